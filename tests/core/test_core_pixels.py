"""core.pixels: the one dtype table, depth conversion, alpha split and join (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from core.pixels import PEAK, as_rgb8, check_pixels, convert_depth, join_alpha, peak, split_alpha, to_uint8


def test_pixels_peak_is_the_full_intensity_of_each_sample_type():
    assert (peak(np.uint8), peak(np.uint16), peak(np.float32)) == (255.0, 65535.0, 1.0)
    assert set(PEAK) == {np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)}
    with pytest.raises(ValueError, match="int64"):
        peak(np.int64)


def test_pixels_convert_depth_round_trips_and_rounds():
    codes8 = np.arange(256, dtype=np.uint8)
    wide = convert_depth(codes8, np.uint16)
    assert wide.dtype == np.uint16 and wide[255] == 65535 and wide[1] == 257
    assert np.array_equal(convert_depth(wide, np.uint8), codes8)  # 8 -> 16 -> 8 is exact
    assert np.array_equal(convert_depth(np.array([128, 32767, 32768], np.uint16), np.uint8), to_uint8(
        np.array([128, 32767, 32768], np.uint16)))
    unit = convert_depth(codes8, np.float32)
    assert unit.dtype == np.float32 and unit[0] == 0.0 and unit[255] == 1.0
    assert np.array_equal(convert_depth(unit, np.uint8), codes8)
    assert list(convert_depth(np.array([-0.5, 0.5, 2.0], np.float32), np.uint16)) == [0, 32768, 65535]
    same = np.zeros((2, 2), np.uint16)
    assert convert_depth(same, np.uint16) is same


def test_pixels_split_and_join_alpha_keep_alpha_exactly():
    rgba = np.random.default_rng(0).integers(0, 65536, (5, 7, 4), dtype=np.uint16)
    color, alpha = split_alpha(rgba)
    assert color.shape == (5, 7, 3) and np.array_equal(alpha, rgba[:, :, 3])
    assert np.array_equal(join_alpha(color, alpha), rgba)
    assert np.array_equal(join_alpha(color, alpha)[:, :, 3], alpha)
    eight = join_alpha(to_uint8(color), alpha)  # alpha follows the colour's depth
    assert eight.dtype == np.uint8 and np.array_equal(eight[:, :, 3], to_uint8(alpha))
    gray, none = split_alpha(np.zeros((3, 4), np.uint8))
    assert gray.shape == (3, 4, 1) and none is None
    with pytest.raises(ValueError, match="shape"):
        split_alpha(np.zeros((3, 4, 5), np.uint8))


def test_pixels_as_rgb8_is_what_evaluation_and_training_read():
    gray_alpha16 = np.stack([np.full((2, 3), 257 * 9, np.uint16), np.zeros((2, 3), np.uint16)], axis=2)
    rgb = as_rgb8(gray_alpha16)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8 and (rgb == 9).all()


def test_pixels_check_refuses_what_the_engine_cannot_take_and_fixes_floats():
    with pytest.raises(ValueError, match="uint8, uint16 or float32"):
        check_pixels(np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="empty"):
        check_pixels(np.zeros((0, 2), np.uint8))
    fixed = check_pixels(np.array([[np.nan, 2.0, -1.0]], np.float32))
    assert fixed.tolist() == [[0.0, 1.0, 0.0]]
