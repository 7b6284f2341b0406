"""Padded box sets: compaction, clipping, mirroring, windows (crops) and truncation."""
import numpy as np

from lightjax.data import boxes

B = np.float32


def _set(rows, m=3):
    """(boxes (n, m, 4), classes (n, m), count (n,)) from lists of (class, box)."""
    n = len(rows)
    bx, cl = np.zeros((n, m, 4), B), np.full((n, m), -1, np.int32)
    for i, row in enumerate(rows):
        for j, (c, b) in enumerate(row):
            bx[i, j], cl[i, j] = b, c
    return bx, cl, (cl >= 0).sum(1).astype(np.int32)


def test_compact_moves_kept_to_front_in_order():
    bx, cl, _ = _set([[(1, (0, 0, .1, .1)), (2, (.2, .2, .3, .3)), (3, (.4, .4, .5, .5))]])
    out, classes, count = boxes.compact(bx, cl, np.array([[False, True, True]]))
    assert classes.tolist() == [[2, 3, -1]] and count.tolist() == [2]
    np.testing.assert_array_equal(out[0], B([[.2, .2, .3, .3], [.4, .4, .5, .5], [0, 0, 0, 0]]))


def test_flip_mirrors_x_of_real_boxes_only():
    bx, cl, count = _set([[(1, (.1, .2, .3, .4))], [(1, (.1, .2, .3, .4))]])
    out = boxes.flip(bx, np.array([True, False]), count)
    np.testing.assert_allclose(out[0, 0], [.7, .2, .9, .4], atol=1e-7)
    np.testing.assert_array_equal(out[1], bx[1])
    assert not out[0, 1:].any()  # padding stays zero


def test_window_shifts_clips_and_drops():
    # 10x10 image; window 10x10 at (top, left) = (-2, 3): x - 0.3, y + 0.2
    bx, cl, count = _set([[(4, (.1, .1, .2, .2)), (5, (.5, .0, .9, .5)), (6, (.5, .7, .6, .95))]])
    out, classes, n = boxes.window(bx, cl, count, np.array([-2]), np.array([3]),
                                   np.array([10]), np.array([10]), (10, 10))
    # box 4 ends at x = -0.1: gone; box 6 is cut at the bottom (y 0.9 .. 1.15 -> 0.9 .. 1)
    assert classes.tolist() == [[5, 6, -1]] and n.tolist() == [2]
    np.testing.assert_allclose(out[0, :2], [[.2, .2, .6, .7], [.2, .9, .3, 1.]], atol=1e-6)


def test_window_scales_into_a_crop():
    # the 4x4 window at (0, 4) of an 8x8 image: the top-right quadrant, scaled by 2
    bx, cl, count = _set([[(1, (.75, 0, 1, .25)), (2, (.125, .125, .375, .375))]])
    out, classes, n = boxes.window(bx, cl, count, np.array([0]), np.array([4]), np.array([4]),
                                   np.array([4]), (8, 8))
    assert classes.tolist() == [[1, -1, -1]] and n.tolist() == [1]
    np.testing.assert_allclose(out[0, 0], [.5, 0, 1, .5], atol=1e-6)


def test_truncate_keeps_the_last_boxes_and_counts_the_rest():
    bx, cl, _ = _set([[(1, (0, 0, .1, .1)), (2, (0, 0, .2, .2)), (3, (0, 0, .3, .3))],
                      [(4, (0, 0, .4, .4))]])
    out, classes, count, dropped = boxes.truncate(bx, cl, 2)
    assert classes.tolist() == [[2, 3], [4, -1]] and count.tolist() == [2, 1] and dropped == 1
    np.testing.assert_allclose(out[0, :, 2], [.2, .3])
    wide, classes, count, dropped = boxes.truncate(bx, cl, 5)  # more room: padded
    assert wide.shape == (2, 5, 4) and classes[1].tolist() == [4, -1, -1, -1, -1]
    assert dropped == 0
