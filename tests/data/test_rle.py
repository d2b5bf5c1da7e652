"""COCO RLE round trips and known encodings (hand-computed from pycocotools' maskApi.c rules)."""

import numpy as np
import pytest

from rrsis_engine import rle
from rrsis_engine.errors import DataError


def test_counts_are_column_major_and_start_with_zeros():
    m = np.array([[0, 1], [1, 1]], bool)  # column-major flat: 0,1,1,1
    assert rle.mask_to_counts(m) == [1, 3]
    m2 = np.array([[1, 0], [1, 0]], bool)  # flat: 1,1,0,0 -> leading empty zero run
    assert rle.mask_to_counts(m2) == [0, 2, 2]
    assert rle.mask_to_counts(np.zeros((3, 4), bool)) == [12]


def test_known_strings():
    assert rle.encode(np.ones((2, 2), bool)) == {"size": [2, 2], "counts": "04"}
    assert rle.encode(np.zeros((3, 4), bool))["counts"] == "<"  # 12 + 48 = '<'
    # delta coding from the 4th count on, with negative deltas (sign bit 0x10)
    counts = [5, 40, 3, 2, 100, 1]
    s = rle.counts_to_string(counts)
    assert rle.string_to_counts(s) == counts
    # 40 needs two 5-bit groups: 40 = 0b01000 + (1 << 5): '8'+32 -> 'X', then '1'
    assert rle.counts_to_string([0, 40]) == "0X1"


@pytest.mark.parametrize("seed", range(6))
def test_random_round_trip(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 70, size=2)
    m = rng.random((h, w)) < rng.random()
    enc = rle.encode(m)
    assert enc["size"] == [int(h), int(w)]
    assert isinstance(enc["counts"], str)
    dec = rle.decode(enc)
    assert dec.dtype == bool and dec.shape == m.shape
    np.testing.assert_array_equal(dec, m)
    assert rle.area(enc) == int(m.sum())
    # uncompressed list form decodes the same
    np.testing.assert_array_equal(rle.decode({"size": [h, w], "counts": rle.mask_to_counts(m)}), m)


def test_large_runs_round_trip():
    m = np.zeros((600, 700), bool)
    m[100:500, 50:650] = True
    np.testing.assert_array_equal(rle.decode(rle.encode(m)), m)
    assert rle.to_bbox(m) == (50, 100, 600, 400)
    assert rle.to_bbox(np.zeros((4, 4), bool)) == (0, 0, 0, 0)


def test_corrupt_rle_raises_data_error():
    with pytest.raises(DataError, match="sum to"):
        rle.decode({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(DataError):
        rle.decode({"counts": "04"})


def test_polygon_segmentation():
    m = rle.decode_segmentation([[1, 1, 5, 1, 5, 4, 1, 4]], 8, 8)
    assert m[2, 3] and not m[6, 6]
