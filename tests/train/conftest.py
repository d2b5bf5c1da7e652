import fake_predictor
import numpy as np
import pytest
import torch
from fake_predictor import fake_prediction
from PIL import Image

from rrsis_engine.imageio import RasterImage
from rrsis_engine.session import RefinementSession


@pytest.fixture(scope="session")
def easy_task_model(tmp_path_factory):
    """rsam-tiny trained from scratch on the easy task (128², 250 steps × 8), 40 % of scenes with a twin red
    square; shared by the slow trainability and ambiguity-flag tests (one training instead of two)."""
    from rrsis_train.easy import EasySource
    from rrsis_train.sources import MixedSource
    from rrsis_train.trainer import Trainer, TrainOptions

    opts = TrainOptions(out=str(tmp_path_factory.mktemp("easy") / "run"), config="rsam-tiny", image_size=128,
                        steps=250, batch=8, sources=["easy:1"], lr=1e-3, warmup=20, click_share=0.5,
                        click_rounds=2, ckpt_every=0, threads=1, progress=False, log_every=50)
    trainer = Trainer(opts)
    trainer.data = MixedSource([EasySource(128, twin_share=0.4)], [1.0], seed=0)
    trainer.fit()
    return trainer.model


def _train_parts_alone(parent_model, tmp_path, parts: tuple[str, ...], source, **options):
    """Train only ``parts`` (``--train-only``) on top of ``parent_model`` on ``source`` (an EasySource; the mix's seed
    is ``options.pop("seed")``), options as TrainOptions fields; asserts every other weight stayed bit-identical.
    Returns the trainer (its model in eval mode)."""
    from rrsis_train.sources import MixedSource
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.model import save_checkpoint

    parent = save_checkpoint(parent_model, tmp_path / "parent.safetensors")
    seed = options.pop("seed")
    opts = TrainOptions(out=str(tmp_path / "run"), init=str(parent), train_only=parts, sources=["easy:1"],
                        ckpt_every=0, threads=1, progress=False, precision="fp32", **options)
    trainer = Trainer(opts)
    trainer.data = MixedSource([source], [1.0], seed=seed)
    trainer.fit()
    trainer.model.eval()
    before = parent_model.state_dict()
    for k, v in trainer.model.state_dict().items():
        if not k.startswith(tuple(f"{p}." for p in parts)):
            assert torch.equal(v, before[k]), f"{k} changed although only {', '.join(parts)} trained"
    return trainer


@pytest.fixture(scope="session")
def train_parts_alone():
    """:func:`_train_parts_alone`: the slow tests of heads trained alone on top of ``easy_task_model``."""
    return _train_parts_alone


@pytest.fixture(scope="session")
def tiny_text_encoder():
    """One MiniLM instance shared by the training tests (loading it is the slow part)."""
    from rrsis_engine.model.text_encoder import TextEncoder

    return TextEncoder("minilm-l6", dim=128)


@pytest.fixture(scope="module")
def tiny_model(tiny_text_encoder):
    """An untrained rsam-tiny (seed 0) with the shared MiniLM, in eval mode: the heads' initial-state tests."""
    from rrsis_engine.model import build_rsam

    torch.manual_seed(0)
    return build_rsam("rsam-tiny", text_encoder=tiny_text_encoder).eval()


class _Fake(fake_predictor.FakePredictor):
    """Masks are 8×8 squares around the last click (the image's centre without one)."""

    def answer(self, image, text, points, labels, box):
        h, w = image.height, image.width
        m = np.zeros((h, w), bool)
        cx, cy = (points[-1] if points is not None and len(points) else (w // 2, h // 2))
        m[int(cy) - 4:int(cy) + 4, int(cx) - 4:int(cx) + 4] = True
        return fake_prediction(m, low_res=False, ambiguity=0.1)


@pytest.fixture
def session_db(tmp_path):
    """A SQLite session DB with 3 sessions, each: 1 accepted, 1 rejected, 1 skipped annotation.
    Returns (path, [(expression, mask) of the accepted ones])."""
    from rrsis_engine.store import open_store

    db = str(tmp_path / "sessions.db")
    store = open_store(db)
    px = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(px).save(tmp_path / "img.png")
    image = RasterImage(px, path=str(tmp_path / "img.png"))
    accepted = []
    for k in range(3):
        s = RefinementSession(_Fake(), image)
        lg = store.start_session(s.image, client="cli", model_version="fake-1")
        s.subscribe(lg)
        s.text(f"the roof number {k}")
        p = s.click(10 + 10 * k, 20)
        s.accept()
        accepted.append((f"the roof number {k}", p.mask))
        s.text("a rejected thing")
        s.accept(status="rejected")
        s.click(30, 30)
        s.accept(status="skipped")
        lg.close()
    store.engine.dispose()
    return db, accepted
