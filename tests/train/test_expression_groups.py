"""Several expressions about one scene per step (--expressions K), and ambiguous expressions trained against all
their look-alikes (--ambiguous-target union)."""

import numpy as np
import pytest
import torch
from rrsis_train.sources import SyntheticSource, augment_group
from rrsis_train.trainer import Trainer, TrainOptions, prepare_sample

from rrsis_engine.data.synthetic import draw_scene, generate_sample, scene_samples
from rrsis_engine.errors import DataError


def test_scene_samples_start_with_the_single_sample_and_name_different_targets():
    image, objects = draw_scene(11, 128)
    group = scene_samples(11, image, objects, n=5)
    assert group[0].expression == generate_sample(11, 128).expression
    assert len({(tuple(sorted(s.target_ids)), s.ambiguous) for s in group}) == len(group) >= 2
    assert all(s.image is image for s in group)
    again = scene_samples(11, image, objects, first=5, n=5)  # the next use of the scene: a new set
    assert [s.id for s in again] != [s.id for s in group]


def test_group_augmentation_moves_every_mask_with_the_shared_image():
    rng = np.random.default_rng(0)
    masks = [rng.random((32, 32)) < 0.3 for _ in range(3)]
    image = np.zeros((32, 32, 3), np.uint8)
    for c, m in enumerate(masks):  # the image encodes the masks: channel c is mask c
        image[..., c] = m * 255
    recs = [{"image": image, "mask": m, "expression": "the pool"} for m in masks]
    moved = 0
    for seed in range(8):
        out = augment_group(recs, np.random.default_rng(seed), color=False, black_rects=0)
        assert all(o["image"] is out[0]["image"] for o in out)
        for c, o in enumerate(out):
            assert np.array_equal(o["image"][..., c] > 127, o["mask"])
        moved += not np.array_equal(out[0]["mask"], masks[0])
    assert moved > 0  # flips / rotations happened
    directional = [dict(r, expression="the pool on the left") if i == 1 else r for i, r in enumerate(recs)]
    for seed in range(4):  # one sentence names a direction: nobody is flipped
        out = augment_group(directional, np.random.default_rng(seed), color=False, black_rects=0)
        assert all(np.array_equal(o["mask"], m) for o, m in zip(out, masks, strict=True))


def test_a_step_encodes_each_scene_once_for_all_its_expressions(tmp_path, monkeypatch):
    opts = TrainOptions(out=str(tmp_path / "run"), config="rsam-tiny", image_size=128, steps=1, batch=2,
                        expressions=3, sources=["synth:1"], click_share=0.5, click_rounds=1, warmup=1,
                        ckpt_every=0, threads=1, progress=False)
    trainer = Trainer(opts)
    samples = trainer.micro_batch(0, 0)
    groups = {s.group for s in samples}
    assert groups == {0, 1} and len(samples) > 2
    for g in groups:
        members = [s for s in samples if s.group == g]
        assert all(s.image is members[0].image for s in members)
        assert len({s.expression for s in members}) == len(members)
    encoded = []
    original = trainer.model.encode_image
    monkeypatch.setattr(trainer.model, "encode_image",
                        lambda x, **kw: encoded.append(x.shape[0]) or original(x, **kw))
    row = trainer.train_step()
    assert encoded == [2] and np.isfinite(row["loss"])


def test_synthetic_source_groups_are_a_pure_function_of_the_sample_number():
    a = SyntheticSource("train", scene_size=96, reuse=2, block=4, expressions=3)
    b = SyntheticSource("train", scene_size=96, reuse=2, block=4, expressions=3)
    for n in (5, 0, 7, 3):
        ga, gb = a.get_group(n), b.get_group(n)
        assert [r["expression"] for r in ga] == [r["expression"] for r in gb]
        assert ga[0]["semantic"] is not None and all(r["semantic"] is None for r in ga[1:])
    uses = {}
    for n in range(8):  # a block of 4 scenes, each used twice: with different expressions each time
        scene, use = a.scene_use(n)
        uses.setdefault(scene, []).append([r["id"] for r in a.get_group(n)])
    assert all(len(v) == 2 and v[0] != v[1] for v in uses.values())


def _ambiguous_record(size=128):
    for seed in range(200):
        s = generate_sample(seed, size, kind="ambiguous")
        if s.ambiguous:
            return s.to_record()
    raise AssertionError("no ambiguous synthetic sample")


@pytest.mark.parametrize("mode", ["skip", "union"])
def test_ambiguous_text_turn_target(tmp_path, mode):
    rec = _ambiguous_record()
    assert rec["candidates_mask"].sum() > rec["mask"].sum() and not (rec["mask"] & ~rec["candidates_mask"]).any()
    opts = TrainOptions(out=str(tmp_path), ambiguous_target=mode, click_share=0.0)
    sample = prepare_sample(rec, np.random.default_rng(0), 128, opts)
    assert sample.ambiguous_label
    if mode == "skip":  # no loss on the text turn; its target is the one look-alike
        assert sample.ambiguous
        assert float(sample.target.sum()) == pytest.approx(rec["mask"].sum() / 16, rel=0.05)
    else:  # scored against every look-alike; the follow-up still picks the intended one
        assert not sample.ambiguous and sample.dialogue
        assert float(sample.target.sum()) == pytest.approx(rec["candidates_mask"].sum() / 16, rel=0.05)
        assert float(sample.followup_target.sum()) == pytest.approx(rec["mask"].sum() / 16, rel=0.05)


def test_ambiguity_head_is_trained_on_the_labels(tmp_path):
    opts = TrainOptions(out=str(tmp_path / "run"), config="rsam-tiny", image_size=128, steps=2, batch=4,
                        sources=["synth:1"], ambiguity_head=0.5, ambiguous_target="union", warmup=1,
                        ckpt_every=0, threads=1, progress=False, log_every=1)
    trainer = Trainer(opts)
    assert trainer.model.ambiguity_head is not None and trainer.model.config.use_ambiguity_head
    before = {k: v.clone() for k, v in trainer.model.ambiguity_head.state_dict().items()}
    trainer.fit()
    assert all(np.isfinite(r["ambiguity"]) for r in trainer.history)
    after = trainer.model.ambiguity_head.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_record_source_groups_expressions_about_the_same_image_file():
    from rrsis_train.sources import RecordSource

    def rec(i, path):
        return {"id": str(i), "image": np.full((8, 8, 3), i, np.uint8), "mask": np.ones((8, 8), bool),
                "expression": f"thing {i}", "image_path": path}

    records = [rec(0, "a.png"), rec(1, "b.png"), rec(2, "a.png"), rec(3, "a.png"), rec(4, None)]
    src = RecordSource(records, "test", expressions=3)
    group = src.get_group(2, np.random.default_rng(0))
    assert group[0]["id"] == "2" and sorted(r["id"] for r in group) == ["0", "2", "3"]
    assert all(r["image"] is group[0]["image"] for r in group)
    assert [r["id"] for r in src.get_group(1, np.random.default_rng(0))] == ["1"]  # alone on its image
    assert [r["id"] for r in src.get_group(4, np.random.default_rng(0))] == ["4"]  # no path: no group
    single = RecordSource(records, "test")
    assert [r["id"] for r in single.get_group(2, np.random.default_rng(0))] == ["2"]


def test_records_name_the_look_alikes_an_expression_rules_out():
    for seed in range(40):
        s = generate_sample(seed, 128)
        rec = s.to_record()
        referred = rec["candidates_mask"] if rec["candidates_mask"] is not None else rec["mask"]
        assert not (rec["distractors_mask"] & referred).any()
        same_category = {o.category for o in s.objects if o.id in s.target_ids}
        expected = np.zeros_like(rec["mask"])
        for o in s.objects:
            if o.category in same_category and not (o.mask & referred).any():
                expected |= o.mask
        assert np.array_equal(rec["distractors_mask"], expected), s.expression
        if s.kind == "class":  # "all houses": nothing is ruled out
            assert not rec["distractors_mask"].any()


def test_distractor_loss_charges_only_the_ruled_out_look_alikes():
    from rrsis_engine.model.loss import distractor_loss

    logits = torch.full((2, 1, 8, 8), -5.0)
    distractors = torch.zeros(2, 1, 8, 8)
    distractors[:, :, :2, :2] = 1.0
    quiet = distractor_loss(logits, distractors)
    logits[0, :, :2, :2] = 5.0  # sample 0 segments its look-alike too
    loud = distractor_loss(logits, distractors)
    assert quiet < 0.01 and loud > 2.0
    logits[0, :, 4:, 4:] = 5.0  # foreground elsewhere (the target) costs nothing here
    assert torch.isclose(distractor_loss(logits, distractors), loud)


def test_focused_expressions_are_about_the_small_categories_only():
    from rrsis_engine.data.synthetic import MIN_TARGET_FRAC, SMALL_CATEGORIES

    kinds, below_target_size = set(), 0
    for seed in range(40):
        image, objects = draw_scene(seed, 128)
        group = scene_samples(seed, image, objects, n=4, focus=SMALL_CATEGORIES)
        if not any(o.category in SMALL_CATEGORIES for o in objects):
            assert group == []
            continue
        assert group
        by_id = {o.id: o for o in objects}
        for s in group:
            assert s.spec["category"] in SMALL_CATEGORIES and s.mask.any()
            assert all(by_id[i].category == s.spec["category"] for i in s.target_ids)
            kinds.add(s.kind)
            below_target_size += min(by_id[i].area for i in s.target_ids) < MIN_TARGET_FRAC * 128 * 128
    assert "class" in kinds and len(kinds) >= 3
    assert below_target_size > 0  # "all the cars": objects smaller than an unfocused target may be named


def test_small_source_prefers_scenes_with_more_of_its_categories_and_stays_deterministic():
    from rrsis_train.sources import build_source, parse_source

    from rrsis_engine.data.synthetic import SMALL_CATEGORIES

    spec = parse_source("small:0.7")
    assert (spec.kind, spec.location, spec.weight) == ("small", None, 0.7)
    with pytest.raises(DataError, match="takes only a weight"):
        parse_source("small:scenes/:1")
    a = build_source(parse_source("small:1"), 128, synth_reuse=2, expressions=3)
    b = build_source(parse_source("small:1"), 128, synth_reuse=2, expressions=3)
    plain = SyntheticSource("train", scene_size=128, reuse=2, expressions=3)
    ships, plain_ships = 0, 0
    for n in range(0, 40, 2):
        ga, gb = a.get_group(n), b.get_group(n)
        assert [r["expression"] for r in ga] == [r["expression"] for r in gb] and ga
        seed, _, objects = a._scene(a.scene_index(n))
        assert seed % a.FOCUS_SEED_STEP == a.ds.seed(a.scene_index(n))
        ships += any(o.category == "ship" for o in objects)
        _, _, objects = plain._scene(plain.scene_index(n))
        plain_ships += any(o.category == "ship" for o in objects)
        semantic = ga[0]["semantic"]  # every target pixel is a small category's
        assert all(np.isin(semantic[r["mask"]], [_class_index(c) for c in SMALL_CATEGORIES]).all() for r in ga)
    assert ships > plain_ships
    assert isinstance(a.get(1)["expression"], str)


def _class_index(category):
    from rrsis_engine.data.synthetic import SEMANTIC_CLASSES

    return SEMANTIC_CLASSES.index(category)
