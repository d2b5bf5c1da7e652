"""An easy referring task for smoke tests and the trainability check: a red square and a blue circle on a
plain background; the expression names one of them ("the red square" / "the blue circle"). With
``twin_share`` > 0 some scenes get a second, identical red square: "the red square" then matches both
(``ambiguous``, mask = both squares) — the controlled case for the ambiguity flag. With ``position_share`` > 0 a
twin scene's expression may name one of the two squares by where it is ("the left red square", "the upper red
square"; mask = that square, not ambiguous) — the controlled case for the component ranker.

Record dicts as in :mod:`rrsis_engine.data` (image H×W×3 uint8, mask H×W bool); item ``n`` is a pure
function of ``(seed, n)``.
"""

from __future__ import annotations

import numpy as np

SQUARE_NAMES = ("the red square", "red square", "the red box")
CIRCLE_NAMES = ("the blue circle", "blue circle", "the blue disk")


def easy_sample(n: int, size: int = 256, seed: int = 0, twin_share: float = 0.0, twins: bool | None = None,
                position_share: float = 0.0) -> dict:
    """Item ``n``; ``twins`` forces (True) or forbids (False) the second red square, else it is drawn
    with probability ``twin_share``; a twin scene names one square by its place with probability ``position_share``."""
    rng = np.random.default_rng([seed, 4242, n])
    bg = rng.integers(60, 200, size=3)
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = bg.astype(np.uint8)
    img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, size=img.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    while True:
        s = int(rng.integers(size // 8, size // 4))
        r = int(rng.integers(size // 16, size // 8))
        sx, sy = rng.integers(0, size - s, size=2)
        cx, cy = rng.integers(r, size - r, size=2)
        square = (xx >= sx) & (xx < sx + s) & (yy >= sy) & (yy < sy + s)
        circle = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        if not (square & circle).any():
            break
    red = (int(rng.integers(180, 240)), int(rng.integers(0, 50)), int(rng.integers(0, 50)))
    img[square] = red
    img[circle] = (int(rng.integers(0, 50)), int(rng.integers(40, 90)), int(rng.integers(180, 240)))
    want_square = bool(rng.integers(2))
    if twins is None:
        twins = twin_share > 0 and rng.random() < twin_share
    if twins:  # a second square of the same size and colour, apart from both shapes
        want_square = True
        taken = square | circle
        for _ in range(200):
            tx, ty = rng.integers(0, size - s, size=2)
            twin = (xx >= tx) & (xx < tx + s) & (yy >= ty) & (yy < ty + s)
            grown = (xx >= tx - 4) & (xx < tx + s + 4) & (yy >= ty - 4) & (yy < ty + s + 4)
            if not (grown & taken).any():
                break
        else:  # no room: the scene stays unambiguous
            twins, twin = False, np.zeros_like(square)
        img[twin] = red
        first = square
        square = square | twin
    names = SQUARE_NAMES if want_square else CIRCLE_NAMES
    expression = names[int(rng.integers(len(names)))]
    mask = square if want_square else circle
    if twins and position_share > 0 and rng.random() < position_share:
        (dx, dy), pick = np.array([tx, ty]) - np.array([sx, sy]), int(rng.integers(2))  # 0: the first square
        if abs(dx) >= abs(dy):
            expression = f"the {('left', 'right')[pick ^ (dx < 0)]} red square"
        else:
            expression = f"the {('upper', 'lower')[pick ^ (dy < 0)]} red square"
        mask = first if pick == 0 else twin
        twins = False
    return {
        "id": f"easy-{n}",
        "image": img,
        "mask": mask,
        "other_mask": circle if want_square else square,
        "expression": expression,
        "ambiguous": bool(twins),
        "followup": None,
        "followup_mask": None,
        "kind": "easy",
    }


class EasySource:
    """Training source for the easy task (``--source easy:1.0``)."""

    name = "easy"

    def __init__(self, size: int = 256, seed: int = 0, twin_share: float = 0.0, position_share: float = 0.0):
        self.size, self.seed, self.twin_share, self.position_share = size, seed, twin_share, position_share

    def __len__(self) -> int:
        return 1 << 40

    def get(self, n: int) -> dict:
        return easy_sample(n, self.size, self.seed, self.twin_share, position_share=self.position_share)
