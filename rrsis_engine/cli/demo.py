"""``rrsis demo``: what ``make demo`` runs.

Segments a bundled sample with ``rrsis predict`` (writes ``out/demo_mask.png``, an overlay and GeoJSON), then
starts the web app (``rrsis app``) on the shipped model and the bundled sample tiles when the app is
installed; ``--headless`` stops after the mask. Without trained weights it says so instead of predicting
with random ones.
"""

from __future__ import annotations

from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

DEMO_IMAGE = "naip_2020_fields.tif"
DEMO_TEXT = "the largest lake"


def samples_dir() -> Path:
    return Path(str(resources.files("rrsis_engine") / "samples"))


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="start the app on the demo model (or --headless: one prediction)")
    p.add_argument("--headless", action="store_true", help="no web app: only predict on a bundled sample")
    p.add_argument("--model", help="model name or checkpoint path (default: the shipped model)")
    p.add_argument("--out", default="out", help="folder for the headless demo's mask and overlay")
    p.add_argument("--text", default=DEMO_TEXT, help="expression for the headless demo")
    p.set_defaults(func=run)


def run(args) -> int:
    from rrsis_engine.errors import NoTrainedWeightsError
    from rrsis_engine.predictor import resolve_model_path

    try:
        resolve_model_path(args.model)
    except NoTrainedWeightsError as exc:
        print(f"rrsis demo: {exc}")
        return 1
    from rrsis_engine.cli import main

    out = Path(args.out)
    argv = ["predict", str(samples_dir() / DEMO_IMAGE), "--text", args.text, "--out", str(out / "demo_mask.png"),
            "--overlay", str(out / "demo_overlay.png"), "--geojson", str(out / "demo_mask.geojson")]
    if args.model:
        argv += ["--model", args.model]
    rc = main(argv + ["--json"])
    if rc != 0 or args.headless:
        return rc
    print(f"rrsis demo: wrote {out / 'demo_mask.png'} and {out / 'demo_overlay.png'}")
    app = [ep for ep in entry_points(group="rrsis.commands") if ep.name == "app"]
    try:
        if app:
            app[0].load()
    except ImportError:
        app = []
    if not app:
        print("rrsis demo: the web app is not installed (pip install 'rrsis[app]'); stopping after the mask.")
        return 0
    argv = ["app", "--samples", str(samples_dir())] + (["--model", args.model] if args.model else [])
    return main(argv)
