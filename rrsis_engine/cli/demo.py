"""``rrsis demo``: what ``make demo`` runs.

Starts the web app (``rrsis app``) on the shipped model and the bundled sample tiles when the app is
installed; with ``--headless`` (or without the app) it segments a bundled sample with ``rrsis predict``
and writes the mask and an overlay. Without trained weights it says so instead of predicting with random ones.
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
    p.add_argument("--headless", action="store_true", help="no web app: predict on a bundled sample and exit")
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
    app = [ep for ep in entry_points(group="rrsis.commands") if ep.name == "app"]
    if not args.headless and app:
        try:
            app[0].load()
        except ImportError:
            app = []
    if not args.headless and app:
        from rrsis_engine.cli import main

        argv = ["app", "--samples", str(samples_dir())] + (["--model", args.model] if args.model else [])
        return main(argv)
    from rrsis_engine.cli import main

    out = Path(args.out)
    argv = ["predict", str(samples_dir() / DEMO_IMAGE), "--text", args.text, "--out", str(out / "demo_mask.png"),
            "--overlay", str(out / "demo_overlay.png"), "--geojson", str(out / "demo_mask.geojson")]
    if args.model:
        argv += ["--model", args.model]
    return main(argv + ["--json"])


