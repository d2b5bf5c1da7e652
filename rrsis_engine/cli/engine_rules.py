"""The switches of the engine's rules around the model, shared by ``rrsis predict`` and ``rrsis eval``: each flag
turns one rule off (every rule is on by default, as in the app and the plugin)."""

from __future__ import annotations

#: (flag, the Predictor keyword it sets to False, what the rule does)
ENGINE_RULES = (
    ("--no-edge-refine", "edge_refine",
     "snaps each mask to the image's colour edges (rrsis_engine.edges)"),
    ("--keep-negated-regions", "remove_negated_regions",
     "removes the separate parts and crossing strips (roads) that negative clicks lie on, or lay deep in on the "
     "previous mask, or the road whose colour strip they lie on (rrsis_engine.postprocess)"),
    ("--no-click-fit", "click_fit",
     "corrects the logits around a click the decoder left on the wrong side (rrsis_engine.model.click_fit)"),
    ("--no-grow-clicks", "grow_clicks",
     "adds the colour region a positive click lies on, a long, thin one such as a road, cut where negative clicks "
     "lie (rrsis_engine.click_regions)"),
    ("--no-spatial-words", "spatial_words",
     "resolves a category with spatial words ('the leftmost building') by geometry over the model's mask of the "
     "category (rrsis_engine.spatial_language)"),
    ("--no-rim-clicks", "rim_clicks",
     "lets a click on the rim of the mask shown before it change that mask only around the click "
     "(rrsis_engine.postprocess.rim_click_zone)"),
    ("--no-boundary-refine", "boundary_refine",
     "redraws the outline within a few pixels from the image colours with the model's boundary refiner, when it "
     "has one (rrsis_engine.model.boundary_refiner)"),
    ("--no-complete-roofs", "complete_roofs",
     "completes a roof the model covers in part to its colour region when spatial words choose among buildings or "
     "all the buildings are asked (rrsis_engine.spatial_language.completed_objects)"),
)


def add_engine_rule_switches(parser) -> None:
    """One ``store_true`` flag per rule of :data:`ENGINE_RULES`."""
    for flag, _, rule in ENGINE_RULES:
        parser.add_argument(flag, action="store_true", help=f"turn off the rule that {rule}")


def engine_rule_options(args) -> dict[str, bool]:
    """The Predictor keywords of the parsed flags (``load_predictor(..., **engine_rule_options(args))``)."""
    return {keyword: not getattr(args, flag.lstrip("-").replace("-", "_")) for flag, keyword, _ in ENGINE_RULES}
