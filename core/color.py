"""Colour maths in torch: sRGB <-> linear RGB <-> CIE XYZ (D65) <-> CIE Lab.

Pure functions, batched, CPU or CUDA. Every image tensor has its channel dimension at -3:
``[..., C, H, W]`` (``[C, H, W]``, ``[N, C, H, W]``, ``[N, T, C, H, W]`` ... all work).

Conventions (chosen to match ``skimage.color.rgb2lab`` / ``lab2rgb`` with illuminant D65 and
observer 2, which the official Zhang et al. code uses):

- sRGB values are floats in ``[0, 1]`` (values outside are converted, not rejected).
- XYZ is relative to Y = 1 for the white point (not 100); the D65 white is
  ``(0.95047, 1.0, 1.08883)``.
- L* is in ``[0, 100]``, a* and b* are in "ab units" (roughly ``[-110, 110]`` for sRGB colours).
- The sRGB <-> XYZ matrix and the Lab branch constants (0.008856, 7.787, 0.2068966) are
  skimage's, so the small discontinuity skimage has where the cube-root branch switches
  (near black) is reproduced rather than "fixed".
- Out-of-gamut Lab: like skimage, ``lab_to_xyz`` clips the intermediate ``fz = fy - b/200`` at 0
  (skimage warns; we do not), and ``lab_to_rgb`` clips to ``[0, 1]`` *after* the linear -> sRGB
  transfer function (a negative linear value passes the linear segment, ×12.92, then clips to 0).
  No gamut mapping is done: each channel is clipped on its own.

Dtypes: float32 and float64 are computed and returned in their own dtype; float16 and
bfloat16 are computed and returned in float32 (half precision cannot hold L* to 1e-3). Integer
and bool tensors are rejected with a ``TypeError`` (convert ``uint8`` with ``x / 255`` first).

All functions are differentiable; in-place ops are used only on temporaries that no backward
formula needs, and large CPU images are processed in cache-sized bands when no gradient is
recorded (see ``_by_bands``), to keep memory traffic low on 12-megapixel images.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = [
    "D65_WHITE",
    "XYZ_FROM_LINEAR_RGB",
    "LINEAR_RGB_FROM_XYZ",
    "srgb_to_linear",
    "linear_to_srgb",
    "linear_rgb_to_xyz",
    "xyz_to_linear_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
    "rgb_to_l",
    "gray_to_l",
]

# CIE XYZ of the D65 white point, 2-degree observer, Y normalised to 1 (skimage's values).
D65_WHITE: tuple[float, float, float] = (0.95047, 1.0, 1.08883)

# sRGB (linear, D65) -> XYZ, rows X, Y, Z (skimage's `xyz_from_rgb`).
XYZ_FROM_LINEAR_RGB: tuple[tuple[float, float, float], ...] = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)

# The exact inverse, computed once in float64 (skimage uses `linalg.inv` of the same matrix).
LINEAR_RGB_FROM_XYZ: tuple[tuple[float, float, float], ...] = tuple(
    tuple(float(v) for v in row)
    for row in torch.linalg.inv(torch.tensor(XYZ_FROM_LINEAR_RGB, dtype=torch.float64)).tolist()
)

# sRGB transfer function (IEC 61966-2-1, with skimage's thresholds).
_SRGB_DECODE_THRESHOLD = 0.04045
_SRGB_ENCODE_THRESHOLD = 0.0031308
_SRGB_LINEAR_SLOPE = 12.92
_SRGB_GAMMA = 2.4
_SRGB_OFFSET = 0.055

# Lab companding f(t) = cbrt(t) above the threshold, 7.787 t + 16/116 below (skimage's constants).
_LAB_EPSILON = 0.008856
_LAB_KAPPA_SLOPE = 7.787
_LAB_OFFSET = 16.0 / 116.0
_LAB_INVERSE_THRESHOLD = 0.2068966

# [L, a, b] = _LAB_FROM_F @ [fx, fy, fz] + [-16, 0, 0]
_LAB_FROM_F = ((0.0, 116.0, 0.0), (500.0, -500.0, 0.0), (0.0, 200.0, -200.0))
# [fx, fy, fz] = _F_FROM_LAB @ [L, a, b] + [16/116, 16/116, 16/116]
_F_FROM_LAB = (
    (1.0 / 116.0, 1.0 / 500.0, 0.0),
    (1.0 / 116.0, 0.0, 0.0),
    (1.0 / 116.0, 0.0, -1.0 / 200.0),
)

# Folding the white point into the matrices saves one full pass over the image.
_NORMALISED_XYZ_FROM_LINEAR_RGB = tuple(
    tuple(v / w for v in row) for row, w in zip(XYZ_FROM_LINEAR_RGB, D65_WHITE)
)
_LINEAR_RGB_FROM_NORMALISED_XYZ = tuple(
    tuple(v * w for v, w in zip(row, D65_WHITE)) for row in LINEAR_RGB_FROM_XYZ
)
# Y of a neutral colour per unit of linear grey: the sum of the Y row (1.0 up to rounding).
_Y_PER_GREY = sum(XYZ_FROM_LINEAR_RGB[1])


def _check_image(x: Tensor, channels: int, name: str) -> Tensor:
    """Validate ``x`` as ``[..., channels, H, W]`` floating; return it in a compute dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating tensor (float32/float64), got {x.dtype}; "
            "convert integer images first, e.g. x.float() / 255"
        )
    if x.dim() < 3 or x.shape[-3] != channels:
        raise ValueError(
            f"{name}: expected shape [..., {channels}, H, W], got {list(x.shape)}"
        )
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def _matrix(rows: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply_matrix(rows: tuple[tuple[float, ...], ...], x: Tensor) -> Tensor:
    """``out[..., i, h, w] = sum_j rows[i][j] * x[..., j, h, w]``: one GEMM over all pixels.

    ``x``: ``[..., C, H, W]``; returns ``[..., len(rows), H, W]`` (contiguous, new tensor).
    """
    *lead, c, h, w = x.shape
    flat = x.reshape(-1, c, h * w)
    matrix = _matrix(rows, x).expand(flat.shape[0], len(rows), c)
    return torch.bmm(matrix, flat).reshape(*lead, len(rows), h, w)


# Pixels per band when a large CPU image is processed band by band (see `_by_bands`).
_BAND_PIXELS = 1 << 17


def _by_bands(fn: Callable[[Tensor], Tensor], x: Tensor, out_channels: int) -> Tensor:
    """``fn(x)`` for a per-pixel ``fn``, computed in bands of about ``_BAND_PIXELS`` pixels.

    Each conversion is a chain of ~10 element-wise passes; on a 12-megapixel image every pass
    streams 144 MB through RAM, whereas a band's temporaries stay in cache (about 2x faster
    on a 2-core CPU). Only done on CPU and when no gradient is being recorded; otherwise (and
    for small inputs) this is exactly ``fn(x)``.
    """
    *lead, c, h, w = x.shape
    batch = x.numel() // max(1, c * h * w)
    if (
        x.device.type != "cpu"
        or (x.requires_grad and torch.is_grad_enabled())
        or batch * h * w <= 2 * _BAND_PIXELS
    ):
        return fn(x)
    flat = x.reshape(batch, c, h, w)
    out = torch.empty((batch, out_channels, h, w), dtype=x.dtype)
    if h * w >= _BAND_PIXELS:
        rows = max(1, _BAND_PIXELS // w)
        for i in range(batch):
            for top in range(0, h, rows):
                out[i, :, top : top + rows] = fn(flat[i, :, top : top + rows])
    else:
        images = max(1, _BAND_PIXELS // (h * w))
        for i in range(0, batch, images):
            out[i : i + images] = fn(flat[i : i + images])
    return out.reshape(*lead, out_channels, h, w)


def _srgb_to_linear(x: Tensor) -> Tensor:
    # The power branch is evaluated on values clamped into its own domain, so the unused
    # side of torch.where never sees a negative base (no NaN, no NaN gradient).
    curved = (
        x.clamp_min(_SRGB_DECODE_THRESHOLD)
        .add_(_SRGB_OFFSET)
        .div_(1.0 + _SRGB_OFFSET)
        .pow_(_SRGB_GAMMA)
    )
    return torch.where(x > _SRGB_DECODE_THRESHOLD, curved, x / _SRGB_LINEAR_SLOPE)


def _linear_to_srgb(x: Tensor) -> Tensor:
    curved = (
        x.clamp_min(_SRGB_ENCODE_THRESHOLD)
        .pow_(1.0 / _SRGB_GAMMA)
        .mul_(1.0 + _SRGB_OFFSET)
        .sub_(_SRGB_OFFSET)
    )
    return torch.where(x > _SRGB_ENCODE_THRESHOLD, curved, x * _SRGB_LINEAR_SLOPE)


def _lab_f(t: Tensor) -> Tensor:
    """CIE companding of white-normalised XYZ (any shape)."""
    cube_root = t.clamp_min(_LAB_EPSILON).pow_(1.0 / 3.0)
    return torch.where(t > _LAB_EPSILON, cube_root, t * _LAB_KAPPA_SLOPE + _LAB_OFFSET)


def _lab_f_inverse(f: Tensor) -> Tensor:
    cube = f.clamp_min(_LAB_INVERSE_THRESHOLD).pow_(3.0)
    return torch.where(
        f > _LAB_INVERSE_THRESHOLD, cube, (f - _LAB_OFFSET) / _LAB_KAPPA_SLOPE
    )


def _lab_from_normalised_xyz(t: Tensor) -> Tensor:
    """``[..., 3, H, W]`` XYZ / white -> Lab."""
    lab = _apply_matrix(_LAB_FROM_F, _lab_f(t))
    lab[..., 0, :, :] -= 16.0
    return lab


def _normalised_xyz_from_lab(lab: Tensor) -> Tensor:
    """Lab -> ``[..., 3, H, W]`` XYZ / white, with skimage's clip of ``fz`` at 0."""
    f = _apply_matrix(_F_FROM_LAB, lab)
    f += _LAB_OFFSET
    f[..., 2, :, :].clamp_min_(0.0)
    return _lab_f_inverse(f)


def _rgb_to_lab(rgb: Tensor) -> Tensor:
    linear = _srgb_to_linear(rgb)
    return _lab_from_normalised_xyz(_apply_matrix(_NORMALISED_XYZ_FROM_LINEAR_RGB, linear))


def _lab_to_rgb(lab: Tensor) -> Tensor:
    linear = _apply_matrix(_LINEAR_RGB_FROM_NORMALISED_XYZ, _normalised_xyz_from_lab(lab))
    return _linear_to_srgb(linear).clamp_(0.0, 1.0)


def _rgb_to_l(rgb: Tensor) -> Tensor:
    y = _apply_matrix((XYZ_FROM_LINEAR_RGB[1],), _srgb_to_linear(rgb))
    return _lab_f(y).mul_(116.0).sub_(16.0)


def _gray_to_l(gray: Tensor) -> Tensor:
    y = _srgb_to_linear(gray)
    if _Y_PER_GREY != 1.0:
        y = y * _Y_PER_GREY
    return _lab_f(y).mul_(116.0).sub_(16.0)


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """sRGB-encoded ``[..., 3, H, W]`` (nominally ``[0, 1]``) -> linear RGB, same shape.

    Applied per element; values outside ``[0, 1]`` follow the formula (no clipping).
    """
    return _by_bands(_srgb_to_linear, _check_image(rgb, 3, "srgb_to_linear"), 3)


def linear_to_srgb(linear: Tensor) -> Tensor:
    """Linear RGB ``[..., 3, H, W]`` -> sRGB-encoded, same shape, NOT clipped.

    Negative values go through the linear segment (×12.92); values above 1 through the power
    curve. Clip the result yourself (``lab_to_rgb`` does) if you need a displayable image.
    """
    return _by_bands(_linear_to_srgb, _check_image(linear, 3, "linear_to_srgb"), 3)


def linear_rgb_to_xyz(linear: Tensor) -> Tensor:
    """Linear sRGB ``[..., 3, H, W]`` -> CIE XYZ (D65, white Y = 1), same shape."""
    return _apply_matrix(XYZ_FROM_LINEAR_RGB, _check_image(linear, 3, "linear_rgb_to_xyz"))


def xyz_to_linear_rgb(xyz: Tensor) -> Tensor:
    """CIE XYZ (D65, white Y = 1) ``[..., 3, H, W]`` -> linear sRGB, same shape, unclipped."""
    return _apply_matrix(LINEAR_RGB_FROM_XYZ, _check_image(xyz, 3, "xyz_to_linear_rgb"))


def xyz_to_lab(xyz: Tensor) -> Tensor:
    """CIE XYZ (D65, white Y = 1) ``[..., 3, H, W]`` -> Lab ``[..., 3, H, W]`` (L in [0, 100])."""
    xyz = _check_image(xyz, 3, "xyz_to_lab")
    white = torch.tensor(D65_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    return _lab_from_normalised_xyz(xyz / white)


def lab_to_xyz(lab: Tensor) -> Tensor:
    """Lab ``[..., 3, H, W]`` -> CIE XYZ (D65, white Y = 1), same shape.

    As in skimage, ``fz = (L + 16)/116 - b/200`` is clipped at 0 (so Z >= 0) for very large b.
    """
    lab = _check_image(lab, 3, "lab_to_xyz")
    white = torch.tensor(D65_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    return _normalised_xyz_from_lab(lab).mul_(white)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB ``[..., 3, H, W]`` in ``[0, 1]`` -> Lab ``[..., 3, H, W]``: L in [0, 100], a/b in ab units.

    Matches ``skimage.color.rgb2lab`` (D65, 2°) to float rounding.
    """
    return _by_bands(_rgb_to_lab, _check_image(rgb, 3, "rgb_to_lab"), 3)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Lab ``[..., 3, H, W]`` -> sRGB ``[..., 3, H, W]`` clipped to ``[0, 1]``.

    Matches ``skimage.color.lab2rgb`` (D65, 2°): ``fz`` clipped at 0, then XYZ -> linear RGB ->
    sRGB transfer function, then each channel clipped to ``[0, 1]`` (no hue-preserving gamut map).
    """
    return _by_bands(_lab_to_rgb, _check_image(lab, 3, "lab_to_rgb"), 3)


def rgb_to_l(rgb: Tensor) -> Tensor:
    """sRGB ``[..., 3, H, W]`` in ``[0, 1]`` -> L* ``[..., 1, H, W]`` in ``[0, 100]``.

    Cheaper than ``rgb_to_lab(rgb)[..., :1, :, :]``: only the Y row of the matrix is applied.
    """
    return _by_bands(_rgb_to_l, _check_image(rgb, 3, "rgb_to_l"), 1)


def gray_to_l(gray: Tensor) -> Tensor:
    """Grey sRGB value ``[..., 1, H, W]`` in ``[0, 1]`` -> L* ``[..., 1, H, W]`` in ``[0, 100]``.

    Same result as ``rgb_to_l`` of the grey repeated on R, G and B.
    """
    return _by_bands(_gray_to_l, _check_image(gray, 1, "gray_to_l"), 1)
