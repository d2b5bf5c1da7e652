"""``rrsis bench app``: click-to-updated-overlay latency of the web app in a real (headless) Chromium.

For each click on the image the browser records ``pointerdown`` and the ``load`` of the new overlay
picture (performance.now(), so decode is included); the engine's own time for the same turn
(``Prediction.latency_ms``) is read from the page's status line. Writes ``benchmarks/app.json`` and
``benchmarks/app.md`` with p50/p95 of both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rrsis_engine.errors import NoTrainedWeightsError, RRSISError

GOAL_P50_MS = 300.0

_HOOK = """() => {
  window.__rr = {down: null, loads: []};
  const root = document.querySelector('#rrsis-image');
  root.addEventListener('pointerdown', () => { window.__rr.down = performance.now(); }, true);
  root.addEventListener('load', (e) => {
    if (e.target.tagName === 'IMG') window.__rr.loads.push([performance.now(), window.__rr.down]);
  }, true);
}"""


def _pct(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if values else float("nan")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if p:
            return p
    raise RRSISError("Chromium is not installed; run `make system` (scripts/setup-system.sh) first.")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="rrsis bench app", description=__doc__)
    p.add_argument("--model", default=None, help="registry name or checkpoint (default: the demo model)")
    p.add_argument("--untrained", default=None, metavar="CONFIG",
                   help="measure with random weights of this config (e.g. rsam-lite) when no trained weights "
                   "exist; latency does not depend on the weight values, and the report says so")
    p.add_argument("--device", default="cpu")
    p.add_argument("--clicks", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--expression", default="the largest lake")
    p.add_argument("--samples", type=Path, default=None, help="sample folder (default: the bundled tiles)")
    p.add_argument("--out", type=Path, default=Path("benchmarks"))
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _predictor(args):
    from rrsis_engine.predictor import Predictor, load_predictor

    if args.untrained:
        import torch

        from rrsis_engine.model import build_rsam

        torch.manual_seed(args.seed)
        return Predictor(build_rsam(args.untrained), device=args.device, disk_cache=False), True
    try:
        return load_predictor(args.model, device=args.device), False
    except NoTrainedWeightsError as exc:
        raise RRSISError(f"{exc} To measure the app's latency anyway, pass --untrained rsam-lite.") from None


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright
    from rrsis_app import state as S
    from rrsis_app.ui import build_app, launch

    from rrsis_engine.store import open_store

    predictor, untrained = _predictor(args)
    tmp = Path(tempfile.mkdtemp(prefix="rrsis-bench-app-"))
    store = open_store(tmp / "sessions.db")  # logging is part of every real turn
    services = S.Services(predictor, store=store, workdir=tmp / "work")
    services.samples = S.discover_samples(args.samples or S.default_samples_dir(), services.workdir / "thumbs")
    if not services.samples:
        raise RRSISError("No sample images found for the benchmark; pass --samples DIR.")
    demo = build_app(services)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = launch(demo, port=port, block=False, quiet=True)
    rng = np.random.default_rng(args.seed)
    browser_ms, engine_ms = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"], headless=True)
            version = browser.version
            page = browser.new_page(viewport={"width": 1440, "height": 1050})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_selector("#rrsis-status >> text=event")

            def event() -> int:
                m = re.search(r"event (\d+)", page.inner_text("#rrsis-status"))
                return int(m.group(1)) if m else -1

            def wait_event(before: int) -> None:
                page.wait_for_function(
                    "(b) => { const m = document.querySelector('#rrsis-status').innerText.match(/event (\\d+)/);"
                    " return m && parseInt(m[1]) > b; }", arg=before)

            before = event()
            page.locator("#rrsis-gallery .thumbnail-item").first.click()
            wait_event(before)
            before = event()
            page.fill("#rrsis-msg textarea", args.expression)
            page.press("#rrsis-msg textarea", "Enter")
            wait_event(before)
            page.evaluate(_HOOK)
            for i in range(args.warmup + args.clicks):
                img = page.locator("#rrsis-image img")
                bb = img.bounding_box()
                nw, nh = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
                r = min(bb["width"] / nw, bb["height"] / nh)
                x0, y0 = bb["x"] + (bb["width"] - nw * r) / 2, bb["y"] + (bb["height"] - nh * r) / 2
                fx, fy = rng.uniform(0.1, 0.9, size=2)
                n_loads = page.evaluate("() => window.__rr.loads.length")
                before = event()
                page.mouse.click(x0 + nw * r * fx, y0 + nh * r * fy)
                wait_event(before)
                page.wait_for_function("(n) => window.__rr.loads.length > n", arg=n_loads)
                loaded, down = page.evaluate("() => window.__rr.loads[window.__rr.loads.length - 1]")
                m = re.search(r"engine: ([\d.]+) ms", page.inner_text("#rrsis-status"))
                if i >= args.warmup and m:
                    browser_ms.append(loaded - down)
                    engine_ms.append(float(m.group(1)))
                if (i + 1) % 10 == 0:  # a real labeler would undo/accept; keep the prompt count bounded
                    before = event()
                    page.click("#rrsis-clear")
                    wait_event(before)
                    before = event()
                    page.fill("#rrsis-msg textarea", args.expression)
                    page.press("#rrsis-msg textarea", "Enter")
                    wait_event(before)
            browser.close()
    finally:
        demo.close()
        store.close()
    p50, p95 = _pct(browser_ms, 50), _pct(browser_ms, 95)
    e50, e95 = _pct(engine_ms, 50), _pct(engine_ms, 95)
    import gradio
    import torch

    result = {
        "benchmark": "app click-to-updated-overlay latency (headless Chromium)",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": predictor.model_name, "model_version": predictor.model_version,
        "untrained_weights": untrained, "device": args.device,
        "image": services.samples[0].path.name, "expression": args.expression,
        "clicks": len(browser_ms), "warmup": args.warmup,
        "browser_p50_ms": round(p50, 1), "browser_p95_ms": round(p95, 1),
        "browser_mean_ms": round(statistics.fmean(browser_ms), 1) if browser_ms else None,
        "engine_p50_ms": round(e50, 1), "engine_p95_ms": round(e95, 1),
        "ratio_p50_browser_to_engine": round(p50 / e50, 2) if e50 > 0 else None,
        "overhead_p50_ms": round(p50 - e50, 1),
        "goal_p50_ms": GOAL_P50_MS, "meets_goal": bool(p50 <= GOAL_P50_MS),
        "browser_ms": [round(v, 1) for v in browser_ms], "engine_ms": [round(v, 1) for v in engine_ms],
        "environment": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
                        "gradio": gradio.__version__, "chromium": version, "machine": platform.machine()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "app.json").write_text(json.dumps(result, indent=2) + "\n")
    note = (" **Untrained weights** (no demo model was installed): the latency is representative, the masks "
            "are not." if untrained else "")
    md = f"""# Web app latency: click → updated overlay

Measured by `rrsis bench app {' '.join(argv)}`.strip() on {result['date']}: the app served on 127.0.0.1,
driven by headless Chromium {version}; for each of {len(browser_ms)} clicks (after {args.warmup} warm-up
clicks) on `{result['image']}` with the expression "{args.expression}", from `pointerdown` on the image to the
`load` of the new overlay picture. Engine time = the predictor's own per-turn latency for the same turn.
Model `{predictor.model_name}` ({predictor.model_version}) on {args.device}, {os.cpu_count()} CPUs,
torch threads {torch.get_num_threads()}.{note}

| | p50 (ms) | p95 (ms) |
|---|---|---|
| browser: click → overlay shown | {p50:.0f} | {p95:.0f} |
| engine: per-turn predict | {e50:.0f} | {e95:.0f} |

Ratio browser / engine (p50): **{result['ratio_p50_browser_to_engine']}** (app overhead {p50 - e50:.0f} ms:
rendering, JPEG encode, queue, transfer, decode). Goal p50 ≤ {GOAL_P50_MS:.0f} ms:
**{'met' if result['meets_goal'] else 'not met'}**.
"""
    md = md.replace("`.strip()", "`")
    (args.out / "app.md").write_text(md)
    print(md)
    return 0
