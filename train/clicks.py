"""Simulated correction clicks, sampled from the error regions of the current prediction (SAM 2 style).

Works in the model frame on the low-resolution grid (S/4 × S/4) the decoder predicts: a click at grid cell
(col, row) is the model-frame pixel ((col + 0.5)·4, (row + 0.5)·4). ``valid`` (the un-padded content area)
keeps clicks out of the padding.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def sample_correction_click(pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator,
                            valid: np.ndarray | None = None, center_prob: float = 0.5) -> tuple[int, int, int] | None:
    """One click (col, row, label) on grid arrays ``pred``/``gt`` (h×w bool), or None when there is no error.

    The label is 1 (positive) on a false-negative region and 0 (negative) on a false positive; the error
    type is chosen with probability proportional to its area. With probability ``center_prob`` the click is
    placed at the error pixel farthest from the error region's boundary (what a careful annotator does,
    as SAM 2's ``sample_one_point_from_error_center``), else uniformly among the error pixels.
    """
    fn = gt & ~pred
    fp = pred & ~gt
    if valid is not None:
        fn &= valid
        fp &= valid
    n_fn, n_fp = int(fn.sum()), int(fp.sum())
    if n_fn + n_fp == 0:
        return None
    positive = rng.random() < n_fn / (n_fn + n_fp)
    err = fn if positive else fp
    if rng.random() < center_prob:
        dist = ndimage.distance_transform_edt(np.pad(err, 1))[1:-1, 1:-1]
        best = np.flatnonzero(dist == dist.max())
        idx = int(best[rng.integers(len(best))])
    else:
        flat = np.flatnonzero(err)
        idx = int(flat[rng.integers(len(flat))])
    row, col = divmod(idx, err.shape[1])
    return col, row, int(positive)


def first_click(gt: np.ndarray, rng: np.random.Generator, valid: np.ndarray | None = None) -> tuple[int, int, int] | None:
    """A positive click inside the target (grid coordinates), for click-only starts; None if empty."""
    return sample_correction_click(np.zeros_like(gt), gt, rng, valid)


def grid_to_model(col: float, row: float, stride: int = 4) -> tuple[float, float]:
    """Low-res grid cell → model-frame pixel (x, y) at the cell centre."""
    return (col + 0.5) * stride, (row + 0.5) * stride
