"""A separate writer process for the store's fault tests (run as a script, never imported by pytest).

    python writer.py burst URL N         log up to N turns, print each committed seq (flushed), then exit
    python writer.py timed URL SECONDS   log turns for SECONDS, print the count; exit 3 if any error escaped
    python writer.py repl URL            commands on stdin: turn N | flush | close | quit; JSON status replies
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

from rrsis_engine.imageio import RasterImage
from rrsis_engine.prediction import Prediction
from rrsis_engine.session import PromptState, Turn, TurnEvent
from rrsis_engine.store import open_store

H, W = 96, 128


def _logger(url, seed: int = 0):
    store = open_store(url)
    rng = np.random.default_rng(seed)
    img = RasterImage(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return store, store.start_session(img, client="cli", model_version="writer")


def _turn(i: int) -> Turn:
    yy, xx = np.mgrid[:H, :W]
    mask = (xx - (i * 7) % W) ** 2 + (yy - (i * 3) % H) ** 2 < 100
    pred = Prediction(mask=mask, logits=None, low_res_logits=None, iou_score=0.5, object_score=0.5, latency_ms=1.0)
    # all turns of one long object history: index i, prior = turn i-1
    return Turn(i, "click", PromptState("w", ((float((i * 7) % W), float((i * 3) % H)),), (1,)), pred, i > 0)


def main(argv: list[str]) -> int:
    mode, url = argv[0], argv[1]
    if mode == "burst":
        store, lg = _logger(url)
        for i in range(int(argv[2])):
            lg(TurnEvent(lg.id, _turn(i)))
            if lg.status.pending == 0:
                print(f"{lg.id} {i}", flush=True)
        lg.close()
        return 0
    if mode == "timed":
        seed = int(argv[3]) if len(argv) > 3 else 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store, lg = _logger(url, seed)
            end = time.monotonic() + float(argv[2])
            n = 0
            while time.monotonic() < end:
                lg(TurnEvent(lg.id, _turn(n)))
                n += 1
            ok = lg.close()
        print(json.dumps({"session": lg.id, "logged": n, "pending": lg.status.pending, "ok": ok,
                          "warnings": [str(w.message) for w in caught]}), flush=True)
        return 0 if ok and not caught else 3
    if mode == "repl":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store, lg = _logger(url)
            n = 0
            for line in sys.stdin:
                cmd = line.split()
                if not cmd or cmd[0] == "quit":
                    break
                if cmd[0] == "turn":
                    for _ in range(int(cmd[1])):
                        lg(TurnEvent(lg.id, _turn(n)))
                        n += 1
                elif cmd[0] == "flush":
                    lg.flush()
                elif cmd[0] == "close":
                    lg.close()
                st = lg.status
                print(json.dumps({"session": lg.id, "state": st.state, "pending": st.pending,
                                  "error": st.last_error, "message": st.message, "logged": n,
                                  "warnings": [str(w.message) for w in caught]}), flush=True)
        return 0
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
