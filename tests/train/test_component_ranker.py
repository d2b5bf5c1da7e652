"""The component ranker: candidate regions of a text turn's probability map, the selection that becomes the mask, the
predictor's use of it (text turns only; candidates and ambiguity cues still from the unranked map), and — trained
alone with ``--train-only component_ranker`` on top of a model that segments both of two identical squares — that it
picks the square the sentence names by its place."""

import numpy as np
import pytest
import torch


def _with_ranker(model):
    from rrsis_engine.model import build_rsam

    torch.manual_seed(3)
    ranked = build_rsam(model.config.with_overrides(use_component_ranker=True), text_encoder=model.text_encoder)
    state = dict(model.state_dict())
    state.update({k: v for k, v in ranked.state_dict().items() if k.startswith("component_ranker.")})
    ranked.load_state_dict(state)
    return ranked.eval()


def test_components_are_the_regions_above_the_threshold_largest_mass_first():
    from rrsis_engine.model.component_ranker import find_components

    prob = np.zeros((16, 16), np.float32)
    prob[1:3, 1:3] = 0.9  # 4 cells, mass 3.6
    prob[8:14, 8:14] = 0.3  # 36 cells, mass 10.8
    prob[0, 15] = 0.95  # 1 cell: noise
    prob[5, 5:8] = 0.05  # below the threshold
    regions = find_components(prob)
    assert regions.shape == (2, 16, 16) and regions.dtype == bool
    assert regions[0].sum() == 36 and regions[1].sum() == 4
    valid = np.zeros((16, 16), bool)
    valid[:8, :8] = True  # the big region lies in the padding
    assert find_components(prob, valid).shape == (1, 16, 16)
    assert find_components(np.zeros((16, 16))).shape == (0, 16, 16)


def test_selection_keeps_the_chosen_regions_and_lowers_everything_else():
    from rrsis_engine.model.component_ranker import SELECTED_LOGIT, select_components

    logits = torch.full((1, 1, 8, 8), -5.0)
    logits[0, 0, :2, :2] = 3.0  # confident, not chosen
    logits[0, 0, 5:, 5:] = -1.0  # weak, chosen
    regions = torch.zeros(2, 8, 8, dtype=torch.bool)
    regions[0, :2, :2] = True
    regions[1, 5:, 5:] = True
    logits[0, 0, 7, 7] = -0.5  # the weak region's peak
    out = select_components(logits, regions, torch.tensor([-2.0, 0.5]))
    assert torch.equal(out[0, 0, 5:, 5:], logits[0, 0, 5:, 5:] + 1.5)  # shifted until its peak is SELECTED_LOGIT
    assert out[0, 0, 7, 7] == SELECTED_LOGIT
    assert (out[0, 0, :2, :2] == -SELECTED_LOGIT).all()  # taken out of the mask
    assert (out[0, 0, 3, 3] == -5.0)  # background unchanged
    # no region scores > 0: the best one is kept
    out = select_components(logits, regions, torch.tensor([-0.5, -2.0]))
    assert (out[0, 0, :2, :2] == 3.0).all() and (out[0, 0, 5:, 5:] == -SELECTED_LOGIT).all()


def test_training_labels_are_the_selection_with_the_best_iou():
    from rrsis_engine.metrics import iou
    from rrsis_engine.model.component_ranker import best_selection, selected_cells

    target = np.zeros((12, 12), bool)
    target[0:4, 0:4] = True  # 16 cells
    logits = np.full((12, 12), -5.0, np.float32)
    regions = np.zeros((4, 12, 12), bool)
    regions[0, 0:4, 0:2] = True  # 8 cells, all inside
    regions[1, 0:6, 2:6] = True  # 24 cells, 8 inside: adding it leaves IoU 0.5 where it is
    regions[2, 10:12, 10:12] = True  # outside
    regions[3, 4:6, 0:2] = True  # 4 cells, none inside
    logits[regions[0]] = 2.0
    logits[regions[1]] = 0.5  # peak below SELECTED_LOGIT: shifted up, all of it selected
    logits[regions[2]] = 3.0
    logits[regions[3]] = 3.0
    logits[5, 0:2] = -3.0  # part of region 3 stays below 0 after no shift (its peak is already 3)
    cells = selected_cells(logits, regions)
    assert cells[1].sum() == 24 and cells[3].sum() == 2
    labels = best_selection(cells, target)
    assert labels.tolist() == [True, False, False, False]
    # brute force over all subsets: no selection beats the labelled one
    best = max(iou(cells[[k for k in range(4) if m >> k & 1]].any(0), target) for m in range(1, 16))
    assert iou(cells[labels].any(0), target) == pytest.approx(best)
    # a sprawling region only partly on the target ("every street") is still worth selecting alone
    sprawl = np.zeros((1, 12, 12), bool)
    sprawl[0, :, :6] = True  # 72 cells, 16 inside
    assert best_selection(sprawl, target).tolist() == [True]
    assert not best_selection(regions[2:3], target).any()  # nothing on the target: select nothing


def test_geometry_ranks_the_regions_by_place_and_size_and_ignores_padding():
    from rrsis_engine.model.component_ranker import N_GEOMETRY, ComponentRanker, stack_components

    g = 16
    left, middle, right = (np.zeros((g, g), bool) for _ in range(3))
    left[6:8, 0:2] = True  # 4 cells
    middle[0:3, 7:10] = True  # 9 cells, the topmost
    right[10:16, 12:16] = True  # 24 cells, the bottommost
    single = np.zeros((1, g, g), bool)
    single[4:6, 4:6] = True
    regions, valid = stack_components([np.stack([middle, right, left]), single], "cpu")
    geo = ComponentRanker.geometry(regions, valid, torch.full((2, 1, g, g), 0.5), torch.tensor([[g, g], [g, g]]))
    assert geo.shape == (2, 3, N_GEOMETRY)
    rank_x, rank_y, rank_area = geo[0, :, -3], geo[0, :, -2], geo[0, :, -1]
    assert rank_x.tolist() == [0.0, 1.0, -1.0]  # middle, right, left
    assert rank_y.tolist() == [-1.0, 1.0, 0.0]
    assert rank_area.tolist() == [0.0, 1.0, -1.0]
    assert (geo[1, :, -3:] == 0).all()  # one region has no rank; padding regions neither


def test_context_describes_what_lies_in_each_direction_around_a_region():
    """A region with a distinctive object east of it and nothing elsewhere: the east sector carries the object's
    features, the other sectors none of them; cells beyond the valid extent and the region's own cells weigh nothing."""
    from rrsis_engine.model.component_ranker import CONTEXT_SECTORS, ComponentRanker, stack_components

    g, c, d = 32, 8, 6
    region = np.zeros((1, g, g), bool)
    region[0, 12:20, 8:16] = True  # S/16 cells rows 3–4, cols 2–3
    regions, valid = stack_components([region], "cpu")
    vd = torch.zeros(1, d, c, c)
    vd[0, :, 3:5, 2:4] = -1.0  # the region itself: never context
    vd[0, 0, 3:5, 4:6] = 5.0  # an object just east of it
    v1 = torch.zeros(1, d // 2, g, g)
    v1[0, 1, 12:20, 16:24] = 2.0  # its colour at the stride-4 grid
    geo_args = (regions, valid, torch.full((1, 1, g, g), 0.5))
    *_, around = ComponentRanker.region_features(*geo_args, vd, v1, torch.tensor([[g, g]]), context=True)
    assert around.shape == (1, 1, len(CONTEXT_SECTORS), d + d // 2 + 1)
    east, others = CONTEXT_SECTORS.index("east"), [i for i, n in enumerate(CONTEXT_SECTORS) if n != "east"]
    assert around[0, 0, east, 0] > 1.0 and around[0, 0, east, d + 1] > 0.4
    assert (around[0, 0, others, :d + d // 2] >= 0).all() and (around[0, 0, others, 0] < 0.5).all()
    assert (around[0, 0, :, 1:d] == 0).all()  # the region's own −1 features are not context
    # only the west half of the image is valid: nothing east of the region is seen, and the east sector weighs less
    *_, clipped = ComponentRanker.region_features(*geo_args, vd, v1, torch.tensor([[g, 16]]), context=True)
    assert clipped[0, 0, east, 0] == 0 and clipped[0, 0, east, -1] < around[0, 0, east, -1]
    assert ComponentRanker.region_features(*geo_args, vd, v1, torch.tensor([[g, g]]))[-1] is None


def test_rankers_saved_before_the_rank_features_load_with_the_same_scores(tiny_model, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from rrsis_engine.model import load_checkpoint, save_checkpoint
    from rrsis_engine.model.component_ranker import N_GEOMETRY, N_GEOMETRY_BEFORE_RANKS, stack_components

    model = _with_ranker(tiny_model)
    key = "component_ranker.region_in.0.weight"
    with torch.no_grad():
        model.component_ranker.region_in[0].weight[:, -(N_GEOMETRY - N_GEOMETRY_BEFORE_RANKS):] = 0.0
    path = save_checkpoint(model, tmp_path / "old.safetensors")
    with safe_open(str(path), "pt") as f:  # rewrite the file as the older code saved it: 11 geometry inputs
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state[key] = state[key][:, :state[key].shape[1] - (N_GEOMETRY - N_GEOMETRY_BEFORE_RANKS)].contiguous()
    save_file(state, str(path), metadata=meta)
    loaded = load_checkpoint(path, text_encoder=tiny_model.text_encoder).eval()
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])
    g = model.image_size // 4
    a = np.zeros((3, g, g), bool)
    a[0, :4, :4] = a[1, 10:, 10:] = a[2, 20:30, 5:9] = True
    regions, valid = stack_components([a], "cpu")
    gen = torch.Generator().manual_seed(2)
    inputs = (regions, valid, torch.rand(1, 1, g, g, generator=gen), torch.randn(1, 128, g // 4, g // 4, generator=gen),
              torch.randn(1, 16, g, g, generator=gen), torch.randn(1, 5, 128, generator=gen),
              torch.ones(1, 5, dtype=torch.bool), torch.tensor([[g, g]]))
    # and with the context inputs (--ranker-context on an older checkpoint): zero weights, the same scores
    with_context = load_checkpoint(path, text_encoder=tiny_model.text_encoder, ranker_context=True).eval()
    assert with_context.config.ranker_context and with_context.component_ranker.context_on
    assert with_context.state_dict()[key].shape[1] > model.state_dict()[key].shape[1]
    with torch.no_grad():
        scores = model.component_ranker(*inputs)
        assert torch.equal(loaded.component_ranker(*inputs), scores)
        assert torch.allclose(with_context.component_ranker(*inputs), scores, atol=1e-5)
    again = load_checkpoint(save_checkpoint(with_context, tmp_path / "ctx.safetensors"),
                            text_encoder=tiny_model.text_encoder)  # the config carries it: loads as saved
    assert again.config.ranker_context and torch.equal(again.state_dict()[key], with_context.state_dict()[key])


def test_ranker_scores_each_region_and_ignores_padding(tiny_model):
    from rrsis_engine.model.component_ranker import stack_components

    model = _with_ranker(tiny_model)
    assert model.config.to_dict()["use_component_ranker"] and "use_component_ranker" not in tiny_model.config.to_dict()
    s, g = model.image_size, model.image_size // 4
    a, b = np.zeros((2, g, g), bool), np.zeros((1, g, g), bool)
    a[0, :4, :4] = a[1, 10:, 10:] = b[0, 20:30, 5:9] = True
    regions, valid = stack_components([a, b], "cpu")
    assert regions.shape == (2, 2, g, g) and valid.tolist() == [[True, True], [True, False]]
    with torch.no_grad():
        feats = model.encode_image(torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(1)))
        tokens, mask = model.encode_text(*model.text_embed(["the left roof", "the pool"]))
        vd, _ = model.fuse(feats.vd, tokens, mask)
        scores = model.rank_components(torch.zeros(2, 1, g, g), regions, valid, vd, feats.v1, tokens, mask,
                                       torch.tensor([[g, g], [g, g]]))
    assert scores.shape == (2, 2) and torch.isfinite(scores[valid]).all() and scores[1, 1] == float("-inf")
    with pytest.raises(ValueError, match="no component ranker"):
        tiny_model.rank_components(torch.zeros(2, 1, g, g), regions, valid, vd, feats.v1, tokens, mask,
                                   torch.tensor([[g, g], [g, g]]))


def test_predictor_ranks_text_turns_and_follow_ups_only_and_reads_candidates_from_the_unranked_map(tiny_model):
    from rrsis_engine.model.component_ranker import SELECTED_LOGIT
    from rrsis_engine.predictor import Predictor

    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    plain = Predictor(tiny_model, device="cpu", disk_cache=False, encoder_precision="fp32")
    ranked = Predictor(_with_ranker(tiny_model), device="cpu", disk_cache=False, encoder_precision="fp32")
    for p in (plain, ranked):
        p.set_image(image)
    before, after = plain.predict("the red roof"), ranked.predict("the red roof")
    assert "rank_ms" in after.timings and "rank_ms" not in before.timings
    # the ranked logits: the unranked ones, lowered to ≤ −SELECTED_LOGIT outside the chosen regions, shifted up inside
    low_b, low_a = before.low_res_logits, after.low_res_logits
    assert not torch.equal(low_a, low_b)
    raised = low_a != low_b.clamp(max=-SELECTED_LOGIT)
    assert raised.any() and (low_a[raised] >= low_b[raised]).all() and low_a.max() >= SELECTED_LOGIT - 1e-6
    assert after.ambiguity_cues == before.ambiguity_cues
    assert [c.bbox for c in after.candidates] == [c.bbox for c in before.candidates]
    # a follow-up sentence (the previous mask as the prior, no clicks) is ranked too
    followup = ranked.predict("the one further left", mask_input=after.low_res_logits)
    assert "rank_ms" in followup.timings
    assert "rank_ms" not in plain.predict("the one further left", mask_input=before.low_res_logits).timings
    # a click turn is the decoder's alone, ranker or not (same prior)
    click = dict(points=np.array([[40.0, 30.0]]), labels=np.array([1]), mask_input=before.low_res_logits)
    assert np.array_equal(plain.predict("the red roof", **click).mask, ranked.predict("the red roof", **click).mask)
    assert "rank_ms" not in ranked.predict("the red roof", **click).timings


def _train_step_decodes(model, samples, text, followup=None) -> list:
    """One TrainStep (one click round) on ``samples``: each ``model.decode`` call in order, as (args, kwargs,
    logits)."""
    from rrsis_train.trainer import TrainStep

    calls = []
    decode = model.decode

    def recording_decode(*args, **kw):
        out = decode(*args, **kw)
        calls.append((args, kw, out[0].detach()))
        return out

    model.decode = recording_decode
    try:
        TrainStep(model)(samples, text, followup, rounds=1)
    finally:
        del model.decode
    return calls


def test_training_click_rounds_start_from_the_ranked_text_turn_as_in_the_predictor(tiny_model):
    """The predictor hands a ranked text turn on as the next turn's prior; training must show the decoder (and the
    heads reading the turn) the same prior, not the unranked map."""
    from rrsis_train.easy import easy_sample
    from rrsis_train.trainer import TextFeatureCache, TrainOptions, prepare_sample

    model = _with_ranker(tiny_model)
    size, g = model.image_size, model.image_size // 4
    opts = TrainOptions(out="unused", click_share=1.0, click_only_share=0.0, dialogue_share=0.0, augment=False)
    samples = [prepare_sample(easy_sample(i, size, twins=True), np.random.default_rng(i), size, opts)
               for i in range(3)]
    text = TextFeatureCache(model).batch([s.expression for s in samples], "cpu")
    calls = _train_step_decodes(model, samples, text)
    (args, _, text_logits), (_, first_click, _) = calls[0], calls[1]
    with torch.no_grad():
        tokens, mask = model.encode_text(*text)
        vd = args[0]  # decode(vd, t_global, feats, …): the text turn's fused tokens
        expected = model.select_text_regions(text_logits, vd, args[2].v1, tokens, mask,
                                             np.stack([s.valid for s in samples]))
    assert not torch.equal(expected, text_logits)  # the ranker changed at least one text turn …
    assert torch.equal(first_click["mask_input"], expected)  # … and the click round starts from its choice
    # batched selection = the predictor's one row at a time
    for j in range(len(samples)):
        one = model.select_text_regions(text_logits[j:j + 1], vd[j:j + 1], args[2].v1[j:j + 1], tokens[j:j + 1],
                                        mask[j:j + 1], samples[j].valid[None])
        assert torch.equal(one, expected[j:j + 1])
    assert expected.shape == (len(samples), 1, g, g)


def _follow_up_samples(size: int, click_share: float, ambiguous: bool = False) -> list:
    """Three easy twin-square scenes whose follow-up "the one further left" names the target, all with a dialogue
    turn (first sentences ``ambiguous`` or not)."""
    from rrsis_train.easy import easy_sample
    from rrsis_train.trainer import TrainOptions, prepare_sample

    opts = TrainOptions(out="unused", click_share=click_share, click_only_share=0.0, dialogue_share=1.0, augment=False)
    samples = []
    for i in range(3):
        rec = easy_sample(i, size, twins=True)
        rec["ambiguous"] = ambiguous or rec.get("ambiguous", False)
        rec["followup"], rec["followup_mask"] = "the one further left", rec["mask"]
        samples.append(prepare_sample(rec, np.random.default_rng(i), size, opts))
    assert all(s.dialogue for s in samples)
    return samples


def test_training_click_rounds_after_a_follow_up_start_from_its_ranked_regions_as_in_the_predictor(tiny_model):
    """The predictor ranks follow-up sentences too (stop 35); training's click rounds after a dialogue turn must start
    from that turn's ranked logits."""
    from rrsis_train.trainer import TextFeatureCache

    model = _with_ranker(tiny_model)
    samples = _follow_up_samples(model.image_size, click_share=1.0)
    cache = TextFeatureCache(model)
    text = cache.batch([s.expression for s in samples], "cpu")
    followup = cache.batch([s.followup for s in samples], "cpu")
    calls = _train_step_decodes(model, samples, text, followup)
    (args, _, followup_logits), (_, first_click, _) = calls[1], calls[2]  # text turn, follow-up, click round
    with torch.no_grad():
        tokens, mask = model.encode_text(*followup)
        expected = model.select_text_regions(followup_logits, args[0], args[2].v1, tokens, mask,
                                             np.stack([s.valid for s in samples]))
    assert not torch.equal(expected, followup_logits)
    assert torch.equal(first_click["mask_input"], expected)


def test_the_ranker_also_learns_from_follow_up_sentences(tiny_model):
    """Samples whose first sentence does not define the target (ambiguous) give the ranker no first-turn example; with
    a follow-up that does, the ranker still gets a loss and gradients — from the follow-up turn, as the predictor
    ranks follow-ups."""
    from rrsis_train.trainer import TextFeatureCache, TrainStep

    model = _with_ranker(tiny_model)
    samples = _follow_up_samples(model.image_size, click_share=0.0, ambiguous=True)
    assert all(s.ambiguous for s in samples)
    cache = TextFeatureCache(model)
    text = cache.batch([s.expression for s in samples], "cpu")
    step = TrainStep(model, ranker_weight=1.0)
    _, stats = step(samples, text, None, rounds=0)
    assert stats["ranker"] is None  # no first turn defines its target
    model.zero_grad()
    loss, stats = step(samples, text, cache.batch([s.followup for s in samples], "cpu"), rounds=0)
    assert stats["ranker"] is not None and stats["ranker"] > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.component_ranker.parameters())


def _placed_and_single_ious(parent_model, model) -> tuple[tuple[float, float], tuple[float, float]]:
    """Text-only mIoU of ``parent_model`` and ``model`` on 24 held-out easy scenes with twin squares and an expression
    that places the named one ("placed"), and on 24 with a single square: ((plain, ranked), (plain, ranked))."""
    from rrsis_train.easy import easy_sample

    from rrsis_engine.metrics import iou as mask_iou
    from rrsis_engine.predictor import Predictor

    plain = Predictor(parent_model, device="cpu", disk_cache=False, encoder_precision="fp32")
    ranked = Predictor(model, device="cpu", disk_cache=False, encoder_precision="fp32")
    ious = {"placed": ([], []), "single": ([], [])}
    for n in range(10**6, 10**6 + 24):  # item numbers never used in training
        for kind, rec in (("placed", easy_sample(n, 128, twins=True, position_share=1.0)),
                          ("single", easy_sample(n, 128, twins=False))):
            for p, out in zip((plain, ranked), ious[kind], strict=True):
                p.set_image(rec["image"])
                out.append(mask_iou(p.predict(rec["expression"]).mask, rec["mask"]))
    return tuple(tuple(float(np.mean(v)) for v in ious[kind]) for kind in ("placed", "single"))


@pytest.mark.slow
def test_ranker_trained_alone_picks_the_square_the_sentence_places(easy_task_model, train_parts_alone, tmp_path):
    from rrsis_train.easy import EasySource

    trainer = train_parts_alone(easy_task_model, tmp_path, ("component_ranker",),
                                EasySource(128, twin_share=0.6, position_share=1.0), seed=1, component_ranker=1.0,
                                steps=600, batch=8, lr=3e-5, warmup=10, click_share=0.0, dialogue_share=0.0,
                                log_every=20)
    (plain_placed, ranked_placed), (plain_single, ranked_single) = _placed_and_single_ious(easy_task_model,
                                                                                         trainer.model)
    # the parent segments both squares (IoU ≈ 0.5 with the named one); the ranker keeps the named one
    assert ranked_placed > 0.75 and ranked_placed > plain_placed + 0.2, (plain_placed, ranked_placed)
    assert ranked_single > plain_single - 0.05, (plain_single, ranked_single)


@pytest.mark.slow
def test_ranker_trained_on_cached_inputs_learns_the_same_and_resumes_bit_exactly(easy_task_model, train_parts_alone,
                                                                                 tmp_path):
    """``--ranker-cache``: the inputs of 600 text turns computed once, then 400 steps of 16 turns drawn from them."""
    from rrsis_train.easy import EasySource
    from rrsis_train.sources import MixedSource
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.errors import CheckpointError

    options = dict(component_ranker=1.0, ranker_cache=600, batch=16, lr=1e-4, warmup=10, click_share=0.0,
                   dialogue_share=0.0, log_every=20)
    trainer = train_parts_alone(easy_task_model, tmp_path, ("component_ranker",),
                                EasySource(128, twin_share=0.6, position_share=1.0), seed=1, steps=400, **options)
    cache = trainer.ranker_cache
    assert (tmp_path / "run" / "ranker-cache.pt").is_file() and len(cache) == 600
    assert cache.region_label.any() and not cache.region_label.all()
    (plain_placed, ranked_placed), (plain_single, ranked_single) = _placed_and_single_ious(easy_task_model,
                                                                                         trainer.model)
    assert ranked_placed > 0.75 and ranked_placed > plain_placed + 0.2, (plain_placed, ranked_placed)
    assert ranked_single > plain_single - 0.05, (plain_single, ranked_single)

    # stopped at step 5 and resumed to 10 == 10 steps at once (the same cache file, batches drawn per step)
    def run(out, steps, resume=False):
        opts = TrainOptions(out=str(out), init=str(tmp_path / "parent.safetensors"), train_only=("component_ranker",),
                            sources=["easy:1"], steps=steps, ckpt_every=0, threads=1, progress=False,
                            precision="fp32", **options)
        t = Trainer(opts)
        t.data = MixedSource([EasySource(128, twin_share=0.6, position_share=1.0)], [1.0], seed=1)
        t.fit(resume=resume)
        return t

    (tmp_path / "resumed").mkdir()
    (tmp_path / "resumed" / "ranker-cache.pt").write_bytes((tmp_path / "run" / "ranker-cache.pt").read_bytes())
    straight = run(tmp_path / "run", 10).model.component_ranker.state_dict()  # reuses the cache of the 400-step run
    run(tmp_path / "resumed", 5)
    resumed = run(tmp_path / "resumed", 10, resume=True).model.component_ranker.state_dict()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    with pytest.raises(CheckpointError, match="other settings"):
        options["ranker_cache"] = 300
        run(tmp_path / "run", 10)


def _cache(seed: int, region_counts: list[int], token_counts: list[int], parent: str = "p", context: bool = True):
    from rrsis_train.ranker_cache import RankerCache, starts

    r, t = sum(region_counts), sum(token_counts)
    g = torch.Generator().manual_seed(seed)
    return RankerCache(region_vd=torch.randn(r, 8, generator=g).half(), region_v1=torch.randn(r, 2, generator=g).half(),
                       region_context=torch.randn(r, 4, 11, generator=g).half() if context else None,
                       region_geometry=torch.randn(r, 14, generator=g), region_label=torch.rand(r, generator=g) > 0.5,
                       region_start=starts(region_counts), token=torch.randn(t, 8, generator=g).half(),
                       token_start=starts(token_counts),
                       meta={"turns": len(region_counts), "sources": ["synth:1"], "seed": seed, "image_size": 64,
                             "scene_size": None, "expressions": 4, "init": "x", "parent_hash": parent,
                             "context": context})


def test_caches_of_other_seeds_append_turn_by_turn_and_others_are_refused(tmp_path):
    """``--ranker-cache-also``: another run's turns follow this run's, each batch row still its own turn's regions
    and tokens; a cache of another model, or of a seed already in, would train on other or repeated data."""
    from rrsis_train.ranker_cache import append_caches

    from rrsis_engine.errors import CheckpointError

    own, other = _cache(1, [3, 1, 2], [4, 2, 5]), _cache(2, [2, 4], [3, 1])
    other.save(tmp_path / "other.pt")
    both = append_caches(own, [tmp_path / "other.pt"])
    assert len(both) == 5 and both.meta["seeds"] == [1, 2] and both.meta["turns"] == 5
    for turn, (cache, index) in enumerate([(own, 0), (own, 1), (own, 2), (other, 0), (other, 1)]):
        for got, want in zip(both.batch([turn], "cpu"), cache.batch([index], "cpu"), strict=True):
            assert torch.equal(got, want), turn
    assert append_caches(own, []) is own

    _cache(1, [1], [1]).save(tmp_path / "same-seed.pt")
    _cache(3, [1], [1], parent="another model").save(tmp_path / "other-model.pt")
    with pytest.raises(CheckpointError, match="seed 1"):
        append_caches(own, [tmp_path / "same-seed.pt"])
    with pytest.raises(CheckpointError, match="parent_hash differ"):
        append_caches(own, [tmp_path / "other-model.pt"])
    with pytest.raises(CheckpointError, match="no such file"):
        append_caches(own, [tmp_path / "missing.pt"])
    _cache(4, [1], [1], context=False).save(tmp_path / "no-context.pt")  # a ranker without --ranker-context
    with pytest.raises(CheckpointError, match="context differ"):
        append_caches(own, [tmp_path / "no-context.pt"])


def test_appended_caches_without_a_cache_run_are_refused(tmp_path):
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.errors import RRSISError

    with pytest.raises(RRSISError, match="give --ranker-cache N too"):
        Trainer(TrainOptions(out=str(tmp_path / "run"), config="rsam-tiny", image_size=64, steps=1, batch=2,
                             ranker_cache_also=(str(tmp_path / "other.pt"),), progress=False))
    with pytest.raises(RRSISError, match="add --component-ranker"):
        Trainer(TrainOptions(out=str(tmp_path / "run"), config="rsam-tiny", image_size=64, steps=1, batch=2,
                             ranker_context=True, progress=False))
