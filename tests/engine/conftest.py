import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_model():
    """rsam-tiny with random weights (MiniLM text encoder) — for wiring, shapes and caching tests."""
    import torch

    from rrsis_engine.model import build_rsam

    torch.manual_seed(0)
    return build_rsam("rsam-tiny").eval()


@pytest.fixture()
def predictor(tiny_model, tmp_path):
    from rrsis_engine.predictor import Predictor

    return Predictor(tiny_model, device="cpu", cache_dir=tmp_path / "emb")


@pytest.fixture()
def feature_on_and_off(tiny_model):
    """``make(image, **off)``: two zoom-less predictors on ``image``, engine defaults and with the options ``off``."""
    from rrsis_engine.predictor import Predictor

    def make(image, **off):
        pair = (Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False),
                Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, **off))
        for p in pair:
            p.set_image(image)
        return pair

    return make


@pytest.fixture()
def rgb_image():
    rng = np.random.default_rng(1)
    img = (rng.random((120, 200, 3)) * 60 + 80).astype(np.uint8)
    img[30:70, 40:90] = (200, 30, 30)
    return img


@pytest.fixture()
def geotiff(tmp_path):
    """A 4-band uint16 georeferenced tif (EPSG:32633, 2 m pixels)."""
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "scene.tif"
    data = (np.random.default_rng(2).random((4, 64, 96)) * 4000).astype(np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=96, height=64, count=4, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(500000, 4100000, 2.0, 2.0)) as dst:
        dst.write(data)
    return path


@pytest.fixture()
def iou_after_standard_clicks():
    """f(predictor, record, n) → IoU after a text turn and up to n standard correction clicks (metrics.next_click)
    in a RefinementSession."""
    from rrsis_engine import metrics as M
    from rrsis_engine.session import RefinementSession

    def run(predictor, rec, n_clicks: int) -> float:
        session = RefinementSession(predictor)
        session.set_image(rec["image"])
        pred = session.text(rec["expression"])
        for _ in range(n_clicks):
            click = M.next_click(pred.mask, rec["mask"])
            if click is None:
                break
            pred = session.click(click[0], click[1], positive=bool(click[2]))
        return M.iou(pred.mask, rec["mask"])

    return run


@pytest.fixture()
def first_standard_click():
    """f(predictor, record) → (text-turn IoU, the first standard click's label 1/0, IoU after it) in a
    RefinementSession (metrics.next_click)."""
    from rrsis_engine import metrics as M
    from rrsis_engine.session import RefinementSession

    def run(predictor, rec) -> tuple[float, int, float]:
        gt = np.asarray(rec["mask"], bool)
        session = RefinementSession(predictor)
        session.set_image(rec["image"])
        text_turn = session.text(rec["expression"])
        x, y, label = M.next_click(text_turn.mask, gt)
        return M.iou(text_turn.mask, gt), label, M.iou(session.click(x, y, positive=bool(label)).mask, gt)

    return run
