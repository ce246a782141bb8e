"""Motion analysis, scene cuts, the temporal filter and colorize_sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.video import evaluate as ev
from core.video.flow import Motion, MotionAnalyser, MotionOptions, warp_tensor
from core.video.temporal import TemporalSmoother, colorize_sequence
from video_support import FlickerColorizer, make_clip


@pytest.fixture(scope="module")
def clip():
    return make_clip(width=128, height=80, shots=(10, 8, 6), seed=5)


def test_cuts_found_exactly_at_shot_boundaries(clip):
    analyser = MotionAnalyser()
    cuts = [t for t, f in enumerate(clip.gray) if analyser(f).cut]
    assert cuts == [0] + clip.spec.cut_frames


def test_flow_aligns_a_shifted_frame():
    rng = np.random.default_rng(0)
    base = (np.kron(rng.integers(0, 255, (24, 32)), np.ones((4, 4)))).astype(np.uint8)
    base = np.ascontiguousarray(np.repeat(base[..., None], 3, axis=2))
    moved = np.roll(base, (2, 3), axis=(0, 1))  # content moves down 2, right 3
    analyser = MotionAnalyser(MotionOptions(preset="medium"))
    analyser(base)
    m = analyser(moved)
    assert not m.cut and m.reliable_share > 0.8
    inner = (slice(10, -10), slice(10, -10))
    assert np.median(m.flow[inner][..., 0]) == pytest.approx(-3, abs=0.3)
    assert np.median(m.flow[inner][..., 1]) == pytest.approx(-2, abs=0.3)
    warped = warp_tensor(torch.from_numpy(base[..., 0]).float()[None], m.flow)[0].numpy()
    assert np.abs(warped - moved[..., 0])[inner].mean() < 0.15 * np.abs(base[..., 0].astype(float) - moved[..., 0])[inner].mean()


def test_smoother_blends_where_reliable_and_resets_at_cuts():
    h, w = 8, 10
    smoother = TemporalSmoother(alpha=0.75)
    first = torch.full((2, h, w), 20.0)
    assert torch.equal(smoother.step(first, None), first)
    reliable = np.zeros((h, w), np.float32)
    reliable[:, :5] = 1.0
    still = Motion(np.zeros((h, w, 2), np.float32), reliable, False, 0.0, 0.5)
    second = torch.full((2, h, w), 0.0)
    out = smoother.step(second, still)
    assert torch.allclose(out[:, :, :5], torch.full((2, h, 5), 15.0))  # 0 + 0.75 * (20 - 0)
    assert torch.equal(out[:, :, 5:], second[:, :, 5:])  # unreliable: the frame's own prediction
    cut = Motion(None, None, True, 0.9, 0.0)
    third = torch.full((2, h, w), -7.0)
    assert torch.equal(smoother.step(third, cut), third)


def test_temporal_mode_cuts_warping_error_and_keeps_colour(clip):
    """On a clip whose ground truth is known, a flickering colorizer's output gets much steadier."""
    result = ev.evaluate_clip("t", clip.color, clip.spec.cut_frames,
                              ev.SimulatedColorizer(ev.ab_channels(clip.color), jitter=8.0))
    assert result.warp["on"] < 0.6 * result.warp["off"]
    assert result.warp_ab["on"] < 0.4 * result.warp_ab["off"]
    # The simulated noise inflates per-frame colourfulness; smoothing must not wash colour out below the truth.
    assert result.colorfulness["on"] > 0.95 * result.colorfulness["truth"]
    assert result.ab_error["on"] < result.ab_error["off"]
    assert result.warp["truth"] < result.warp["on"]


def test_warping_error_is_zero_for_a_still_clip_and_grows_with_flicker(clip):
    still = [clip.color[0]] * 4
    motion = ev.reference_motion([f[..., 0] for f in still])
    assert ev.warping_error(still, motion) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f.astype(int) + rng.integers(-20, 20, f.shape), 0, 255).astype(np.uint8) for f in still]
    assert ev.warping_error(noisy, motion) > 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_colorize_sequence_keeps_dtype_alpha_order_and_lightness(clip, dtype):
    scale = {np.uint8: 1, np.uint16: 257, np.float32: 1 / 255}[dtype]
    frames = []
    for i, g in enumerate(clip.gray[:6]):
        gray = (g[..., :1].astype(np.float64) * scale).astype(dtype)
        alpha = np.full_like(gray, (i + 1) * 10 * scale)
        frames.append(np.concatenate([gray, alpha], axis=2))  # gray + alpha
    colorizer = FlickerColorizer(jitter=4.0, amplitude=15.0)
    out = list(colorize_sequence(iter(frames), colorizer, batch_size=4))
    assert len(out) == 6 and colorizer.batch_sizes == [4, 2]
    for f, o in zip(frames, out):
        assert o.dtype == dtype and o.shape == f.shape[:2] + (4,)
        assert np.array_equal(o[..., 3], f[..., 1])
    back = out[2][..., :3].astype(np.float64) / scale
    gray = frames[2][..., 0].astype(np.float64) / scale
    assert np.abs(back.mean(axis=2) - gray).mean() > 1.0  # coloured, not gray
    from core.color import rgb_to_l

    def lightness(rgb8: np.ndarray) -> np.ndarray:
        return rgb_to_l(torch.from_numpy(rgb8).permute(2, 0, 1).double() / 255)[0].numpy()

    assert np.abs(lightness(back) - lightness(np.repeat(gray[..., None], 3, axis=2))).mean() < 0.5


def test_colorize_sequence_off_is_per_frame_and_sizes_may_change(clip):
    frames = [clip.gray[0], clip.gray[1], clip.gray[2][:64, :100]]
    on = list(colorize_sequence(frames, FlickerColorizer(seed=1), temporal=True))
    off = list(colorize_sequence(frames, FlickerColorizer(seed=1), temporal=False))
    assert [o.shape for o in on] == [(80, 128, 3), (80, 128, 3), (64, 100, 3)]
    assert np.array_equal(on[0], off[0])  # first frame: nothing to blend with
    assert not np.array_equal(on[1], off[1])  # blended with the warped first frame
    assert np.array_equal(on[2], off[2])  # size changed: state reset
    with pytest.raises(ValueError, match="uint8, uint16 or float32"):
        list(colorize_sequence([np.zeros((4, 4), np.int64)], FlickerColorizer()))
