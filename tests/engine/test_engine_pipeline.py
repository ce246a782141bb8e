"""The pipeline and Python API: geometry, L* preserved, alpha kept, batching, masks, hints, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from engine_stand_ins import gradient_gray
from core.color import lab_to_rgb_keep_l, rgb_to_l
from core.device import DeviceError, inference_dtype, resolve_device
from core.geometry import render_geometry
from core.pipeline import Colorizer, colorize
from core.pixel_tensors import luminance_from_pixels


def _l_of(pixels: np.ndarray) -> torch.Tensor:
    """L* ``[H, W]`` of RGB(A) pixels of any dtype."""
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
    rgb = torch.from_numpy(pixels[:, :, :3].astype(np.float32) / scale).permute(2, 0, 1)
    return rgb_to_l(rgb)[0]


def test_engine_render_geometry_keeps_aspect_and_pads_to_stride():
    g = render_geometry(3000, 4000, 256, stride=8, out_stride=4)
    assert (g.height, g.width) == (192, 256)
    assert (g.padded_height, g.padded_width) == (192, 256) and (g.out_height, g.out_width) == (48, 64)
    g = render_geometry(1000, 333, 256, stride=8, out_stride=4)
    assert g.height == 256 and g.width == 84 and g.padded_width == 88 and g.out_width == 21
    assert abs(g.width / g.height - 333 / 1000) < 4 / 256  # never squashed: only snapped to out_stride
    g = render_geometry(5, 4000, 256, stride=32, out_stride=2)
    assert g.height == 2 and g.padded_height == 32


def test_engine_gray_uint8_output_keeps_l(tiny_colorizer, gray8):
    out = tiny_colorizer.colorize_array(gray8)
    assert out.shape == gray8.shape + (3,) and out.dtype == np.uint8
    L_in = luminance_from_pixels(gray8[:, :, None])[0, 0]
    assert (_l_of(out) - L_in).abs().max().item() < 0.6  # 8-bit rounding of the three channels
    chroma = np.abs(out.astype(int) - out.mean(axis=2, keepdims=True)).max()
    assert chroma > 10  # it is actually coloured


def test_engine_16bit_and_float_outputs_keep_l_tightly(tiny_colorizer):
    for dtype, tolerance in ((np.uint16, 0.01), (np.float32, 5e-3)):
        gray = gradient_gray(dtype=dtype)
        out = tiny_colorizer.colorize_array(gray)
        assert out.dtype == dtype and out.shape == gray.shape + (3,)
        L_in = luminance_from_pixels(gray[:, :, None])[0, 0]
        assert (_l_of(out) - L_in).abs().max().item() < tolerance


def test_engine_rgb_input_counts_as_its_l_and_alpha_is_kept(tiny_colorizer):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 52, 4), dtype=np.uint8)
    out = tiny_colorizer.colorize_array(rgba)
    assert out.shape == (40, 52, 4)
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])
    assert (_l_of(out) - _l_of(rgba)).abs().max().item() < 0.6


def test_engine_gray_alpha_input_gives_rgba(tiny_colorizer, gray8):
    alpha = np.random.default_rng(1).integers(0, 256, gray8.shape, dtype=np.uint8)
    out = tiny_colorizer.colorize_array(np.dstack([gray8, alpha]))
    assert out.shape == gray8.shape + (4,)
    np.testing.assert_array_equal(out[:, :, 3], alpha)


def test_engine_out_of_gamut_colours_keep_l():
    L = torch.linspace(1, 99, 64).view(1, 1, 8, 8)
    ab = torch.stack([torch.full((8, 8), 90.0), torch.full((8, 8), -110.0)])[None]
    rgb = lab_to_rgb_keep_l(L, ab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    torch.testing.assert_close(rgb_to_l(rgb), L, atol=2e-3, rtol=0)
    assert (rgb.amax(dim=1) - rgb.amin(dim=1)).mean() > 0.1  # chroma reduced, not dropped


def test_engine_batching_equals_one_by_one(tiny_colorizer):
    a = torch.from_numpy(gradient_gray(48, 64, np.float32) * 100)[None, None]
    b = torch.from_numpy(gradient_gray(96, 128, np.float32)[:, ::-1].copy() * 90)[None, None]  # same render size
    c = torch.rand(1, 1, 30, 70) * 100  # a different render size
    together = tiny_colorizer.colorize_L([a, b, c], batch_size=4)
    alone = [tiny_colorizer.colorize_L(x) for x in (a, b, c)]
    for t, s in zip(together, alone):
        torch.testing.assert_close(t, s, atol=1e-4, rtol=0)
    stacked = tiny_colorizer.colorize_L(torch.cat([a, a.flip(-1)]))
    torch.testing.assert_close(stacked[1:], tiny_colorizer.colorize_L(a.flip(-1)), atol=1e-4, rtol=0)
    arrays = tiny_colorizer.colorize_arrays([gradient_gray(), gradient_gray(30, 70)], batch_size=2)
    np.testing.assert_array_equal(arrays[1], tiny_colorizer.colorize_array(gradient_gray(30, 70)))


def test_engine_colorize_l_options_are_checked(tiny_colorizer):
    L = torch.rand(1, 1, 16, 16) * 100
    with pytest.raises(ValueError, match="decode"):
        tiny_colorizer.colorize_L(L, decode="median")
    with pytest.raises(ValueError, match="temperature"):
        tiny_colorizer.colorize_L(L, temperature=0)
    with pytest.raises(ValueError, match=r"\[N,1,H,W\]"):
        tiny_colorizer.colorize_L(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="uint8, uint16 or float32"):
        tiny_colorizer.colorize_array(np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match="mask"):
        tiny_colorizer.colorize_array(gradient_gray(), mask=np.ones((3, 3), np.float32))


def test_engine_decode_and_temperature_change_the_colour(tiny_colorizer):
    L = torch.from_numpy(gradient_gray(32, 48, np.float32) * 100)[None, None]
    temperatures = (0.1, 0.2, 0.38, 0.7, 1.0)
    chroma = [float(tiny_colorizer.colorize_L(L, temperature=t).norm(dim=1).mean()) for t in temperatures]
    assert all(colder > warmer + 0.2 for colder, warmer in zip(chroma, chroma[1:])), chroma  # T acts, monotonically
    torch.testing.assert_close(tiny_colorizer.colorize_L(L, temperature=1.0), tiny_colorizer.colorize_L(L, decode="mean"))
    mode = float(tiny_colorizer.colorize_L(L, decode="mode").norm(dim=1).mean())
    assert abs(chroma[0] - mode) < abs(chroma[-1] - mode)  # towards the mode as T falls


def test_engine_mask_colorize_keeps_input_outside_mask(tiny_colorizer):
    rgb = np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), np.float32)
    mask[:, 30:] = 1.0
    mask[:, 28:30] = 0.5
    out = tiny_colorizer.colorize_array(rgb, mask=mask, mask_colorize=True)
    np.testing.assert_array_equal(out[:, :28], rgb[:, :28])
    assert not np.array_equal(out[:, 30:], rgb[:, 30:])
    gray = gradient_gray(40, 60)
    out = tiny_colorizer.colorize_array(gray, mask=Image.fromarray((mask * 255).astype(np.uint8)), mask_colorize=True)
    assert np.all(out[:, :28].max(axis=2) - out[:, :28].min(axis=2) <= 1)  # stays gray
    assert (out[:, 32:].max(axis=2).astype(int) - out[:, 32:].min(axis=2)).max() > 10


def test_engine_mask_limits_post_processing(tiny_colorizer):
    pytest.importorskip("core.post")
    L = torch.from_numpy(gradient_gray(48, 64, np.float32) * 100)[None, None]
    plain = tiny_colorizer.colorize_L(L)
    smoothed = tiny_colorizer.colorize_L(L, post=("tv",))
    assert (smoothed - plain).abs().max() > 0.01
    nowhere = tiny_colorizer.colorize_L(L, post=("tv",), mask=np.zeros((48, 64), np.float32))
    torch.testing.assert_close(nowhere, plain)


def test_engine_ab_model_and_hints(ab_colorizer):
    gray = gradient_gray(64, 64)
    hint_ab = np.zeros((64, 64, 2), np.float32)
    hint_mask = np.zeros((64, 64), bool)
    hint_ab[20:44, 20:44] = (-60.0, 60.0)
    hint_mask[20:44, 20:44] = True
    L = luminance_from_pixels(gray[:, :, None])
    ab = ab_colorizer.colorize_L(L, hint_ab=torch.from_numpy(hint_ab).permute(2, 0, 1)[None],
                                 hint_mask=torch.from_numpy(hint_mask)[None, None].float())
    centre = ab[0, :, 28:36, 28:36]
    assert centre[0].mean() < -40 and centre[1].mean() > 40
    out = ab_colorizer.colorize_array(gray, hint_ab=hint_ab, hint_mask=hint_mask)
    assert out.shape == (64, 64, 3)


def test_engine_colorize_api_pil_in_pil_out_with_icc(tiny_models):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.fromarray(gradient_gray()).convert("RGB")
    image.info["icc_profile"] = icc
    out = colorize(image, "tiny", device="cpu")
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == image.size
    assert out.info["icc_profile"] == icc
    array_out = colorize(gradient_gray(), "tiny", device="cpu")
    assert isinstance(array_out, np.ndarray) and array_out.shape == (48, 64, 3)
    from core.pipeline import get_colorizer

    assert get_colorizer("tiny", "cpu") is get_colorizer("tiny", "cpu")  # loaded once per process


def test_engine_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu9")
    assert inference_dtype(torch.device("cpu")) == torch.float32
    assert inference_dtype(torch.device("cuda")) == torch.float16
    with pytest.raises(DeviceError, match="half"):
        inference_dtype(torch.device("cpu"), half=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_engine_cuda_half_matches_cpu(gray8):
    from engine_stand_ins import TinyLogitsModel

    cpu = Colorizer(TinyLogitsModel(), "cpu").colorize_array(gray8)
    gpu = Colorizer(TinyLogitsModel(), "cuda").colorize_array(gray8)
    assert np.abs(cpu.astype(int) - gpu).max() <= 3


def test_engine_banded_8bit_merge_matches_exact_conversion(monkeypatch):
    import core.color as color
    import core.pipeline as pipeline

    monkeypatch.setattr(color, "_GAMUT_BAND_PIXELS", 64)  # many bands, the last one partial
    torch.manual_seed(1)
    L = torch.rand(1, 1, 37, 23) * 100
    ab = torch.randn(1, 2, 37, 23) * 40
    fast = pipeline.merge_to_pixels(L, ab, np.uint8)
    exact = pipeline.quantize_rgb(lab_to_rgb_keep_l(L, ab)[0], np.uint8)
    assert fast.shape == (37, 23, 3)
    assert np.abs(fast.astype(int) - exact).max() <= 1
    for dtype in (np.uint8, np.uint16):  # written into a given array: in place (8-bit) or copied
        out = np.zeros((37, 23, 3), dtype)
        assert pipeline.merge_to_pixels(L, ab, dtype, out=out) is out
        np.testing.assert_array_equal(out, pipeline.merge_to_pixels(L, ab, dtype))
    strided = np.zeros((37, 23, 4), np.uint8)[:, :, :3]  # the colour of an RGBA output
    pipeline.merge_to_pixels(L, ab, np.uint8, out=strided)
    np.testing.assert_array_equal(strided, fast)
    with pytest.raises(ValueError):
        pipeline.merge_to_pixels(L, ab, np.uint8, out=np.zeros((37, 23, 3), np.uint16))


def test_engine_colorize_options_take_their_defaults_and_bounds_from_core_options():
    import dataclasses

    from core.options import OPTIONS, OptionError
    from core.pipeline import ColorizeOptions

    defaults = ColorizeOptions()
    for name in ("temperature", "decode", "render_size", "post_strength", "batch_size"):
        assert getattr(defaults, name) == OPTIONS[name].default, name
    assert defaults.post == () and defaults.content == "auto"
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.temperature = 0.5  # type: ignore[misc]
    with pytest.raises(OptionError, match="temperature"):
        ColorizeOptions(temperature=OPTIONS["temperature"].maximum + 1)
    with pytest.raises(OptionError, match="post_strength"):
        ColorizeOptions(post_strength=2.0)
    with pytest.raises(ValueError, match="render size"):
        ColorizeOptions(render_size=int(OPTIONS["render_size"].maximum) + 8)
    with pytest.raises(ValueError, match="sequence of step names"):
        ColorizeOptions(post="tv")
    assert ColorizeOptions(decode="mode", temperature=0).decode == "mode"  # T matters only when annealing
    built = ColorizeOptions.from_opts({"temperature": 0.2, "post": ["tv"], "render_size": None, "mask": object()})
    assert (built.temperature, built.post, built.render_size) == (0.2, ("tv",), OPTIONS["render_size"].default)


def test_engine_colorize_options_object_equals_the_same_settings_as_keywords():
    from engine_stand_ins import TinyLogitsModel

    from core.pipeline import ColorizeOptions

    colorizer = Colorizer(TinyLogitsModel(), "cpu")
    gray = gradient_gray(37, 53)
    mask = np.zeros((37, 53), np.float32)
    mask[:, 20:] = 1.0
    keywords = colorizer.colorize_array(gray, temperature=0.2, post=("tv",), post_strength=0.5, mask=mask)
    typed = colorizer.colorize_array(gray, ColorizeOptions(temperature=0.2, post=("tv",), post_strength=0.5),
                                     mask=mask)
    assert np.array_equal(typed, keywords)
    assert not np.array_equal(typed, colorizer.colorize_array(gray, ColorizeOptions(temperature=1.0), mask=mask))
    with pytest.raises(TypeError, match="temperature"):
        colorizer.colorize_array(gray, ColorizeOptions(), temperature=0.2)


def test_engine_gray_rgb_pixels_take_the_gray_table_and_match_the_conversion():
    from core.pixel_tensors import is_gray_rgb, unit_tensor

    rng = np.random.default_rng(3)
    for dtype, peak in ((np.uint8, 255), (np.uint16, 65535)):
        gray = rng.integers(0, peak + 1, (41, 37, 1)).astype(dtype)
        rgb = np.repeat(gray, 3, axis=2)
        assert is_gray_rgb(rgb)
        exact = rgb_to_l(unit_tensor(rgb))
        torch.testing.assert_close(luminance_from_pixels(rgb), exact, atol=2e-3, rtol=0)
        torch.testing.assert_close(luminance_from_pixels(rgb), luminance_from_pixels(gray), atol=0, rtol=0)
        tinted = rgb.copy()
        tinted[40, 36, 2] ^= 1  # one pixel off gray, away from the sparse sample
        assert not is_gray_rgb(tinted)
        torch.testing.assert_close(luminance_from_pixels(tinted), rgb_to_l(unit_tensor(tinted)), atol=0, rtol=0)
    assert not is_gray_rgb(np.zeros((4, 4, 1), np.uint8))
