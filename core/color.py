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
- Gamut-keeping Lab: ``lab_to_linear_rgb_keep_l``, ``lab_to_rgb_keep_l`` and ``lab_to_rgb8_keep_l``
  take L* and ab apart and never change L*: a colour outside sRGB loses chroma (same hue) until it
  fits, instead of being clipped per channel. They are for images (no gradient), not for training.

Dtypes: float32 and float64 are computed and returned in their own dtype; float16 and
bfloat16 are computed and returned in float32 (half precision cannot hold L* to 1e-3). Integer
and bool tensors are rejected with a ``TypeError`` (convert ``uint8`` with ``x / 255`` first).

All functions are differentiable; in-place ops are used only on temporaries that no backward
formula needs, and large CPU images are processed in cache-sized bands when no gradient is
recorded (see ``_by_bands``), to keep memory traffic low on 12-megapixel images.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
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
    "lab_to_linear_rgb_keep_l",
    "lab_to_rgb_keep_l",
    "lab_to_rgb8_keep_l",
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


# --------------------------------------------------------------------------- gamut-keeping Lab -> RGB

# The gamut-keeping conversions compute linear RGB in units of 1/65535, the resolution of the 8-bit
# path's lookup table. A colour is in gamut when every channel truncates into [0, 65535], i.e.
# lies within (-1/65535, 1 + 1/65535): a slack below one 16-bit step.
_LINEAR_STEPS = 65535
_GAMUT_BISECTION_STEPS = 5  # where the table's guess misses: within 1/32 of the largest scale that fits
# Pixels per band on the CPU: the band's buffers are reused, so no band allocates (and page-faults)
# fresh memory, and they stay in the caches.
_GAMUT_BAND_PIXELS = 1 << 17
_HIGH_BITS = ~0xFFFF  # an int32 outside [0, 65535] has one of these bits set (negatives too)


def _check_lab_pair(L: Tensor, ab: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Validate L ``[..., 1, H, W]`` and ab ``[..., 2, H, W]`` of one shape; both in L's compute dtype."""
    L = _check_image(L, 1, f"{name}: L")
    ab = _check_image(ab, 2, f"{name}: ab")
    if L.shape[:-3] != ab.shape[:-3] or L.shape[-2:] != ab.shape[-2:]:
        raise ValueError(f"{name}: L {list(L.shape)} and ab {list(ab.shape)} must match but for the channels")
    if L.device != ab.device:
        raise ValueError(f"{name}: L is on {L.device}, ab on {ab.device}")
    return L.contiguous(), ab.to(L.dtype).contiguous()


class _GamutKernel:
    """Lab -> linear RGB in steps of 1/65535, one band of pixels at a time, reporting the pixels
    outside sRGB; :meth:`reduce_chroma` then brings those back in.

    Linear RGB is computed channels first (``[3, m]``): a ``[3, 3] @ [3, m]`` product is an order of
    magnitude faster on the CPU than the same product channels last. The band buffers are allocated
    once for the largest band and reused (fresh full-size temporaries would cost more in page faults
    than the arithmetic does).

    Args:
        pixels: the largest band.
        interleaved: also give each band's truncated values channels last (``[m, 3]``, the order of
            8-bit pixels), for the 8-bit path's table lookup.
    """

    def __init__(self, pixels: int, dtype: torch.dtype, device: torch.device, interleaved: bool = False):
        matrix = torch.tensor(_LINEAR_RGB_FROM_NORMALISED_XYZ, dtype=torch.float64).mul_(_LINEAR_STEPS)
        self.matrix = matrix.to(dtype=dtype, device=device)  # [rgb, xyz]
        self.f = torch.empty(3 * pixels, dtype=dtype, device=device)
        self.cube = torch.empty(3 * pixels, dtype=dtype, device=device)
        self.linear = torch.empty(3 * pixels, dtype=dtype, device=device)
        self.index = torch.empty(3 * pixels, dtype=torch.int32, device=device)
        self.interleaved = torch.empty(3 * pixels, dtype=torch.int32, device=device) if interleaved else None
        self.bits = torch.empty(pixels, dtype=torch.int32, device=device)

    def band(self, L: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """``L``, ``a``, ``b``: ``[m]`` -> (linear RGB × 65535 ``[3, m]``, with ``interleaved`` its
        truncation ``[m, 3]`` int32 with the out-of-gamut pixels set to 0 (else None), int64 indices of
        those pixels). The first two are views valid until the next call."""
        m = L.numel()
        f, cube = self.f[: 3 * m].view(3, m), self.cube[: 3 * m].view(3, m)
        linear, index, bits = self.linear[: 3 * m].view(3, m), self.index[: 3 * m].view(3, m), self.bits[:m]
        torch.add(L, 16.0, out=f[1]).mul_(1.0 / 116.0)
        torch.add(f[1], a, alpha=1.0 / 500.0, out=f[0])
        torch.add(f[1], b, alpha=-1.0 / 200.0, out=f[2]).clamp_min_(0.0)  # skimage's clip of fz
        torch.mm(self.matrix, _lab_f_inverse_into(f, cube), out=linear)
        index.copy_(linear)  # truncates; NaN becomes INT_MIN, which counts as outside
        torch.bitwise_or(index[0], index[1], out=bits).bitwise_or_(index[2]).bitwise_and_(_HIGH_BITS)
        outside = _flat_nonzero(bits)
        if self.interleaved is None:
            return linear, None, outside
        if outside.numel():
            index.index_fill_(1, outside, 0)
        interleaved = self.interleaved[: 3 * m].view(m, 3)
        interleaved.T.copy_(index)
        return linear, interleaved, outside

    def reduce_chroma(self, L: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """``[k]`` L*, a, b of colours outside sRGB -> ``[3, k]`` linear RGB × 65535 in
        [0, 65535] of the same L* and hue, at the chroma of :func:`_max_chroma_table` for that L* and
        hue (within 0.5 % of the most that fits). The few colours that this misses (the table's
        corners taken together may overestimate near a curved stretch of the boundary) get the largest
        chroma scale of 1/32, 2/32, ... 31/32 of that guess that fits (bisection), or the gray of that L*.
        A non-finite a or b counts as 0 (its pixel was reported out of gamut)."""
        a, b = (torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) for x in (a, b))
        fy = L.add(16.0).mul_(1.0 / 116.0)
        y_part = self.matrix[:, 1:2] * _lab_f_inverse_into(fy[None].clone(), torch.empty_like(fy[None]))  # [3, k]
        xz_matrix = self.matrix[:, 0::2].contiguous()  # [3, 2]
        a_step, b_step = a * (1.0 / 500.0), b * (-1.0 / 200.0)
        f = torch.empty(2, L.numel(), dtype=L.dtype, device=L.device)
        cube = torch.empty_like(f)

        def linear_at(chroma: Tensor) -> Tensor:
            torch.addcmul(fy, chroma, a_step, out=f[0])
            torch.addcmul(fy, chroma, b_step, out=f[1]).clamp_min_(0.0)
            return torch.addmm(y_part, xz_matrix, _lab_f_inverse_into(f, cube))

        def fitting(linear: Tensor) -> Tensor:
            return (linear.amin(0) > -1.0).logical_and_(linear.amax(0) < _LINEAR_STEPS + 1.0)

        limit = _max_chroma(L, a, b).div_(torch.hypot(a, b).clamp_min_(1e-6)).clamp_(0.0, 1.0)
        linear = linear_at(limit)
        missed = _flat_nonzero(fitting(linear).logical_not_())
        if missed.numel():
            fy, a_step, b_step = (x.index_select(0, missed) for x in (fy, a_step, b_step))
            y_part = y_part.index_select(1, missed)
            f, cube, ceiling = f[:, : missed.numel()], cube[:, : missed.numel()], limit.index_select(0, missed)
            fits = torch.zeros_like(ceiling)  # the largest fraction of the guess known to fit (gray always does)
            step = 1.0
            for _ in range(_GAMUT_BISECTION_STEPS):
                step *= 0.5
                fits.add_(fitting(linear_at((fits + step).mul_(ceiling))), alpha=step)
            linear.index_copy_(1, missed, linear_at(fits.mul_(ceiling)))
        return linear.clamp_(0.0, float(_LINEAR_STEPS))


# The table of the largest in-gamut chroma: L* 0..100 in _CHROMA_TABLE_L - 1 steps, the hue circle in
# _CHROMA_TABLE_HUES steps; found by bisection to 1/2^_CHROMA_TABLE_BISECTIONS of _CHROMA_TABLE_TOP.
_CHROMA_TABLE_L = 257
_CHROMA_TABLE_HUES = 512
_CHROMA_TABLE_TOP = 256.0  # ab units; no sRGB colour has a chroma above 134
_CHROMA_TABLE_BISECTIONS = 16  # 0.004 ab units
_CHROMA_TABLE_MARGIN = 0.995  # the guess stays this fraction below the boundary the table found


@functools.lru_cache(maxsize=4)
def _max_chroma_table(dtype: torch.dtype, device: torch.device) -> Tensor:
    """``[(_CHROMA_TABLE_L - 1) * _CHROMA_TABLE_HUES]`` (L-major): per cell of the L* × hue grid, the least
    of its four corners' largest chroma (ab units) at which the colour lies in sRGB (linear RGB within
    [0, 1], computed in float64), less :data:`_CHROMA_TABLE_MARGIN`."""
    L = torch.linspace(0.0, 100.0, _CHROMA_TABLE_L, dtype=torch.float64).repeat_interleave(_CHROMA_TABLE_HUES)
    hue = torch.arange(_CHROMA_TABLE_HUES, dtype=torch.float64).mul_(2.0 * np.pi / _CHROMA_TABLE_HUES).sub_(np.pi)
    a_unit, b_unit = torch.cos(hue).repeat(_CHROMA_TABLE_L) / 500.0, torch.sin(hue).repeat(_CHROMA_TABLE_L) / -200.0
    matrix_t = torch.tensor(_LINEAR_RGB_FROM_NORMALISED_XYZ, dtype=torch.float64).T.contiguous()
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy, fy, fy], dim=1)
    cube = torch.empty_like(f)

    def inside(chroma: Tensor) -> Tensor:
        torch.addcmul(fy, chroma, a_unit, out=f[:, 0])
        f[:, 1] = fy
        torch.addcmul(fy, chroma, b_unit, out=f[:, 2]).clamp_min_(0.0)
        linear = _lab_f_inverse_into(f, cube) @ matrix_t
        return (linear.amin(1) >= 0.0).logical_and_(linear.amax(1) <= 1.0)

    low, step = torch.zeros_like(L), _CHROMA_TABLE_TOP
    for _ in range(_CHROMA_TABLE_BISECTIONS):
        step *= 0.5
        low.add_(inside(low + step), alpha=step)
    corners = low.view(_CHROMA_TABLE_L, _CHROMA_TABLE_HUES)
    corners = torch.minimum(corners, corners.roll(-1, dims=1))  # the hue circle wraps around
    cells = torch.minimum(corners[:-1], corners[1:]).mul_(_CHROMA_TABLE_MARGIN)
    return cells.reshape(-1).to(dtype=dtype, device=device)


def _max_chroma(L: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``[k]`` L*, a, b -> ``[k]`` a chroma (ab units) that fits sRGB at that L* and hue, from the table's
    cell around it (new tensor, L's dtype)."""
    rows = L.clamp(0.0, 100.0).mul_((_CHROMA_TABLE_L - 1) / 100.0).floor_().clamp_(max=_CHROMA_TABLE_L - 2)
    hues = torch.atan2(b, a).add_(np.pi).mul_(_CHROMA_TABLE_HUES / (2.0 * np.pi)).floor_()
    cell = rows.mul_(_CHROMA_TABLE_HUES).add_(hues.clamp_(0.0, _CHROMA_TABLE_HUES - 1))  # exact in float32
    return _max_chroma_table(L.dtype, L.device).index_select(0, cell.to(torch.int64))


def _lab_f_inverse_into(f: Tensor, out: Tensor) -> Tensor:
    """Inverse CIE companding of ``f`` into ``out`` (same shape); ``f`` is overwritten.

    Computes ``max(f, t)^3 + min(f - t, 0) / 7.787``: below the threshold ``t`` that is
    ``t^3 + (f - t) / 7.787``, 4e-8 from skimage's ``(f - 16/116) / 7.787`` (the linear branch
    is the cube's tangent at ``t``), with no masked select.
    """
    torch.clamp_min(f, _LAB_INVERSE_THRESHOLD, out=out)
    f.sub_(out)
    return out.pow_(3).add_(f, alpha=1.0 / _LAB_KAPPA_SLOPE)


def _flat_nonzero(values: Tensor) -> Tensor:
    """Indices of the non-zero entries of a 1-D tensor (int64, on its device)."""
    if values.device.type == "cpu":  # numpy's, on a bool copy, is several times faster than torch's on the CPU
        return torch.from_numpy(np.flatnonzero(values.ne(0).numpy()))
    return values.nonzero().squeeze(1)


def _keep_l_images(L: Tensor, ab: Tensor, store: Callable[[int, Tensor | slice, Tensor, Tensor | None], None],
                   interleaved: bool = False) -> None:
    """Gamut-keeping linear RGB of every image, handed over in pieces: ``store(image, where,
    linear, index)`` with ``where`` the pixels (a band's ``slice`` or int64 indices), ``linear``
    ``[3, m]`` linear RGB × 65535 and, with ``interleaved``, ``index`` its int32 truncation in
    [0, 65535] channels last, ``[m, 3]`` (else None)."""
    pixels = L.shape[-2] * L.shape[-1]
    images = L.numel() // max(1, pixels)
    L_flat = L.reshape(images, pixels)
    ab_flat = ab.reshape(images, 2, pixels)
    band = min(pixels, _GAMUT_BAND_PIXELS) if L.device.type == "cpu" else pixels
    kernel = _GamutKernel(band, L.dtype, L.device, interleaved)
    with torch.no_grad():
        for image in range(images):
            l_img, a_img, b_img = L_flat[image], ab_flat[image, 0], ab_flat[image, 1]
            outside = []
            for start in range(0, pixels, band):
                stop = min(pixels, start + band)
                linear, index, out_of_gamut = kernel.band(l_img[start:stop], a_img[start:stop], b_img[start:stop])
                store(image, slice(start, stop), linear, index)
                if out_of_gamut.numel():
                    outside.append(out_of_gamut.add_(start))
            if outside:  # the out-of-gamut pixels of all bands, in bands of their own
                everywhere = torch.cat(outside)
                for start in range(0, everywhere.numel(), band):
                    where = everywhere[start : start + band]
                    linear = kernel.reduce_chroma(*(x.index_select(0, where) for x in (l_img, a_img, b_img)))
                    store(image, where, linear, linear.T.to(torch.int32) if interleaved else None)


def lab_to_linear_rgb_keep_l(L: Tensor, ab: Tensor) -> Tensor:
    """L* and ab -> linear sRGB with L* kept exactly: a colour outside sRGB keeps its hue and loses
    chroma (to within 0.5 % of the most that fits, from a table of the sRGB boundary) instead of being
    clipped per channel, which would change its lightness.

    Args:
        L: ``[..., 1, H, W]`` float L* in [0, 100].
        ab: ``[..., 2, H, W]`` float ab units, same leading shape and device.
    Returns:
        ``[..., 3, H, W]`` linear RGB in [0, 1] (float32, or float64 for float64 input).
    Raises:
        TypeError: for a non-tensor or non-floating input. ValueError: for a wrong or mismatched shape.
    """
    L, ab = _check_lab_pair(L, ab, "lab_to_linear_rgb_keep_l")
    out = torch.empty((*L.shape[:-3], 3, *L.shape[-2:]), dtype=L.dtype, device=L.device)
    planes = out.view(-1, 3, L.shape[-2] * L.shape[-1])

    def store(image: int, where: Tensor | slice, linear: Tensor, index: Tensor | None) -> None:
        if isinstance(where, slice):
            torch.mul(linear, 1.0 / _LINEAR_STEPS, out=planes[image, :, where])
        else:
            planes[image].index_copy_(1, where, linear * (1.0 / _LINEAR_STEPS))

    _keep_l_images(L, ab, store)
    return out.clamp_(0.0, 1.0)


def lab_to_rgb_keep_l(L: Tensor, ab: Tensor) -> Tensor:
    """L* and ab -> sRGB ``[..., 3, H, W]`` in [0, 1] with L* kept (see :func:`lab_to_linear_rgb_keep_l`)."""
    return linear_to_srgb(lab_to_linear_rgb_keep_l(L, ab)).clamp_(0.0, 1.0)


@functools.lru_cache(maxsize=4)
def _srgb8_lut(device: torch.device) -> Tensor:
    """8-bit sRGB code of the linear values ``[i, i + 1) / 65535``, taken at their middle (uint8)."""
    linear = torch.arange(_LINEAR_STEPS + 1, dtype=torch.float64).add_(0.5).div_(_LINEAR_STEPS)
    codes = _linear_to_srgb(linear).mul_(255.0).add_(0.5).clamp_(0.0, 255.0)
    return codes.to(torch.uint8).to(device)


def lab_to_rgb8_keep_l(L: Tensor, ab: Tensor, out: Tensor | None = None) -> Tensor:
    """L* and ab -> 8-bit sRGB pixels, channels last, with L* kept (see :func:`lab_to_linear_rgb_keep_l`).

    The transfer curve is a 65536-entry lookup table on the linear value: within half a code step
    of the exact conversion plus the table's own step (a few pixels round one code apart).

    Args:
        L: ``[..., 1, H, W]`` float L* in [0, 100].
        ab: ``[..., 2, H, W]`` float ab units, same leading shape and device.
        out: where to write the pixels: contiguous uint8 ``[..., H, W, 3]`` on L's device (else a new tensor).
    Returns:
        ``[..., H, W, 3]`` uint8 on L's device (``out`` when given).
    Raises:
        TypeError: for a non-tensor or non-floating input. ValueError: for a wrong or mismatched shape or ``out``.
    """
    L, ab = _check_lab_pair(L, ab, "lab_to_rgb8_keep_l")
    shape = (*L.shape[:-3], *L.shape[-2:], 3)
    if out is None:
        out = torch.empty(shape, dtype=torch.uint8, device=L.device)
    elif tuple(out.shape) != shape or out.dtype != torch.uint8 or out.device != L.device or not out.is_contiguous():
        raise ValueError(f"lab_to_rgb8_keep_l: out must be contiguous uint8 {list(shape)} on {L.device}, "
                         f"got {out.dtype} {list(out.shape)} on {out.device}")
    codes = out.view(-1, L.shape[-2] * L.shape[-1] * 3)
    lut = _srgb8_lut(L.device)

    def store(image: int, where: Tensor | slice, linear: Tensor, index: Tensor | None) -> None:
        if isinstance(where, slice):
            torch.index_select(lut, 0, index.view(-1), out=codes[image, 3 * where.start : 3 * where.stop])
        else:
            # index is [k, 3] channels last, usually a transposed view of [3, k]: look up channel-major
            # (no int32 copy) and let index_copy_ take the [k, 3] uint8 view.
            channel_major = lut.index_select(0, index.T.reshape(-1)).view(3, -1)
            codes[image].view(-1, 3).index_copy_(0, where, channel_major.T)

    _keep_l_images(L, ab, store, interleaved=True)
    return out
