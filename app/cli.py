"""``rrsis app``: serve the web app (Gradio) on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rrsis_engine.errors import NoTrainedWeightsError, RRSISError

log = logging.getLogger("rrsis.app")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app", help="start the web app (chat + clickable image) in the browser",
        description="Start the Gradio web app. Open the printed URL in a browser.",
    )
    p.add_argument("--model", default=None,
                   help="registry name (e.g. rsam-lite) or checkpoint path (.safetensors); default: the demo model")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--db", default=None, help="session database: file path or SQLAlchemy URL "
                   "(default: $RRSIS_DB or ./sessions.db)")
    p.add_argument("--no-db", action="store_true", help="do not log sessions")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", default=None, metavar="USER:PASS", help="require this login (for shared use)")
    p.add_argument("--samples", type=Path, default=None, help="folder of sample images for the gallery "
                   "(default: the bundled NAIP tiles)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted upload (MB)")
    p.add_argument("--max-pixels", type=int, default=None, help="largest accepted width×height")
    p.add_argument("--concurrency", type=int, default=1, help="model calls served at the same time")
    p.set_defaults(func=run)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``USER:PASS`` → (user, pass); RRSISError when malformed."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise RRSISError("--auth must look like USER:PASS (both non-empty).")
    return user, password


def build_services(model=None, device=None, db=None, no_db=False, samples_dir=None, limits=None,
                   predictor=None):
    """Load the shared predictor (or record why not), open the store, find samples.

    A missing default model is not fatal (the app shows why); an explicit --model that fails is.
    """
    from rrsis_app import state as S

    error = None
    if predictor is None:
        try:
            from rrsis_engine.predictor import load_predictor

            predictor = load_predictor(model, device=device)
        except NoTrainedWeightsError as exc:  # no demo weights yet: serve and say so on the page
            error = str(exc)
    store = None
    if not no_db:
        from rrsis_engine.store import open_store

        store = open_store(db)
    services = S.Services(predictor, error, store, limits=limits or S.Limits())
    folder = samples_dir if samples_dir is not None else S.default_samples_dir()
    if samples_dir is not None and not Path(samples_dir).is_dir():
        raise RRSISError(f"--samples {samples_dir} is not a folder.")
    services.samples = S.discover_samples(folder, services.workdir / "thumbs")
    return services


def run(args: argparse.Namespace) -> int:
    from rrsis_app import state as S
    from rrsis_app.ui import build_app, launch

    auth = parse_auth(args.auth)
    limits = S.Limits(max_upload_bytes=int(args.max_upload_mb * 2**20))
    if args.max_pixels:
        limits.max_pixels = args.max_pixels
    services = build_services(args.model, args.device, args.db, args.no_db, args.samples, limits)
    if services.predictor is None:
        print(f"warning: {services.predictor_error}\nThe app starts anyway and says so on the page.")
    if args.host not in ("127.0.0.1", "localhost") and auth is None:
        print(f"warning: serving on {args.host} without --auth: anyone who can reach it can use it.")
    demo = build_app(services)
    print(f"rrsis app: model {services.model_label}; {len(services.samples)} sample images; "
          f"sessions logged to {services.store.display_url if services.store else 'nowhere (--no-db)'}")
    print(f"Open http://{args.host}:{args.port} in a browser (Ctrl+C stops).", flush=True)
    launch(demo, host=args.host, port=args.port, auth=auth, concurrency=args.concurrency, block=True, quiet=True)
    return 0
