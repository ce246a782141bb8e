"""Synthetic document pages for training: paper, ink, handwriting, print, scan artefacts.

:func:`render_page` draws one page, deterministically per seed, with numpy and Pillow only, fast enough
to be called inside a training data loader (a 192 × 256 page takes a few milliseconds on one core;
``python -m core.training.synth_documents bench`` measures it). What a page may hold:

- paper: white, cream, yellowed or parchment, with fibre noise, low-frequency mottling, stains with tide
  lines, foxing, fold shadows, uneven lighting, show-through of the mirrored text of the other side, and
  sometimes the dark table or a book gutter around it;
- ink: iron-gall brown, black, sepia, faded blue or violet; red (sometimes blue) rubrics; faint ruled lines,
  register columns and margin rules;
- printed text in the fonts installed under :data:`FONT_DIRS` (Pillow's built-in scalable font when none is
  installed) and cursive handwriting-like strokes (loopy random curves with slant, ascenders, descenders and
  pressure-varying width), in one or two columns with marginalia;
- sometimes a coloured initial, a stamp or a small hand-coloured illustration;
- scan artefacts: slight rotation, blur, sensor noise, vignetting and JPEG re-encoding.

Palettes are CIE Lab ranges tuned so that the mean paper and ink ab of generated pages match those of the
real training scans in ``../shared/data/documents`` (measured with :func:`paper_ink_ab`; the figures are in
the module's ``stats`` command output and the project's notes).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS: tuple[str, ...] = ("/usr/share/fonts", "/usr/local/share/fonts")
SUPERSAMPLE = 2  # ink is drawn at this scale and box-filtered down, which anti-aliases strokes

# Paper tones as (weight, L range, a range, b range) in CIE Lab.
PAPERS: dict[str, tuple[float, tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "white": (0.22, (87.0, 94.0), (-2.4, -0.4), (2.0, 7.0)),
    "cream": (0.36, (83.0, 90.0), (-2.0, 0.0), (7.0, 12.5)),
    "yellowed": (0.26, (76.0, 86.0), (-1.5, 0.8), (12.0, 19.0)),
    "parchment": (0.16, (68.0, 82.0), (-0.5, 3.5), (13.0, 22.0)),
}
# Writing inks at full strength as (weight, L range, a range, b range).
INKS: dict[str, tuple[float, tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "iron-gall": (0.32, (22.0, 38.0), (1.5, 6.5), (8.0, 19.0)),
    "black": (0.30, (10.0, 24.0), (-1.0, 2.0), (-2.0, 5.0)),
    "sepia": (0.16, (32.0, 46.0), (1.0, 5.0), (7.0, 15.0)),
    "faded-blue": (0.12, (30.0, 50.0), (0.0, 10.0), (-30.0, -12.0)),
    "violet": (0.08, (28.0, 45.0), (14.0, 26.0), (-30.0, -16.0)),
}
RUBRICS: tuple[tuple[tuple[float, float], tuple[float, float], tuple[float, float]], ...] = (
    ((38.0, 50.0), (42.0, 60.0), (28.0, 46.0)),  # vermilion / red lead
    ((30.0, 45.0), (5.0, 20.0), (-45.0, -30.0)),  # azurite / ultramarine blue
)
# Pigments of initials, stamps and illustrations: (L, a, b) centres, jittered per page.
PIGMENTS: tuple[tuple[float, float, float], ...] = (
    (45.0, 55.0, 38.0),  # vermilion
    (35.0, 12.0, -42.0),  # ultramarine
    (50.0, -30.0, 20.0),  # verdigris green
    (68.0, 8.0, 55.0),  # ochre / gold
    (35.0, 40.0, 5.0),  # carmine / madder
    (30.0, 30.0, -30.0),  # violet stamp ink
)
BACKGROUNDS: tuple[tuple[float, float, float], ...] = ((18.0, 6.0, 12.0), (8.0, 0.0, 0.0), (30.0, 4.0, 8.0), (25.0, -2.0, -6.0))
_LETTERS = "abcdefghijklmnopqrstuvwxyzaeioueeinrstaeio"


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) ``[..., 3]`` -> sRGB float32 ``[..., 3]`` in [0, 1] (out-of-gamut clipped)."""
    from skimage.color import lab2rgb

    lab = np.asarray(lab, dtype=np.float64)
    return lab2rgb(lab.reshape(1, -1, 3)).reshape(lab.shape).astype(np.float32)


def _pick(rng: np.random.Generator, table: dict) -> tuple[str, np.ndarray]:
    names = list(table)
    weights = np.array([table[n][0] for n in names])
    name = names[rng.choice(len(names), p=weights / weights.sum())]
    _, *ranges = table[name]
    return name, np.array([rng.uniform(lo, hi) for lo, hi in ranges])


@lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """TrueType/OpenType files under :data:`FONT_DIRS`, sorted (empty when none are installed)."""
    found: list[str] = []
    for d in FONT_DIRS:
        root = Path(d)
        if root.is_dir():
            found.extend(str(p) for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    return tuple(sorted(found))


@lru_cache(maxsize=512)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    size = max(4, int(size))
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise ``[h, w]`` float32 with roughly zero mean and unit std, ``cells`` along the long side."""
    gh = max(2, round(cells * h / max(h, w)) + 1)
    gw = max(2, round(cells * w / max(h, w)) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    im = Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC)
    return np.asarray(im)


class _Ink:
    """An ink layer: coverage drawn at :data:`SUPERSAMPLE` scale, composited in one colour."""

    def __init__(self, h: int, w: int, rgb: np.ndarray, opacity: float = 1.0):
        self.image = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.rgb = rgb
        self.opacity = opacity


def _paper(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Paper sRGB ``[h, w, 3]`` float32 with mottling, stains and foxing; also its base Lab and tone name."""
    tone, lab = _pick(rng, PAPERS)
    # Paper varies little around its base colour, so Lab offsets map to sRGB through the local Jacobian
    # (three colour conversions instead of one per pixel).
    probe = _lab_to_rgb(np.array([lab, lab + (1.0, 0.0, 0.0), lab + (0.0, 1.0, 0.0), lab + (0.0, 0.0, 1.0)]))
    base_rgb, jac = probe[0], probe[1:] - probe[0]  # jac[k] = d sRGB / d Lab_k
    mott = _smooth_noise(rng, h, w, int(rng.integers(3, 9)))
    fine = _smooth_noise(rng, h, w, int(rng.integers(20, 60)))
    tint = rng.uniform(0.2, 1.5)
    dL = mott * rng.uniform(0.5, 2.5) + fine * rng.uniform(0.2, 1.2)
    da = mott * (0.2 * tint)
    db = mott * tint
    # Stains: thresholded low-frequency blobs, brown-yellow, with a darker tide line at their edge.
    for _ in range(int(rng.poisson(0.8))):
        blob = _smooth_noise(rng, h, w, int(rng.integers(3, 8)))
        thr = rng.uniform(1.0, 1.8)
        m = np.clip((blob - thr) * rng.uniform(1.5, 4.0), 0.0, 1.0)
        ring = np.clip(1.0 - np.abs(blob - thr) * 6.0, 0.0, 1.0) * rng.uniform(0.0, 1.0)
        depth = rng.uniform(3.0, 12.0)
        dL = dL - (0.5 * m + ring) * depth
        da = da + (m + ring) * (depth * 0.25)
        db = db + (m + ring) * (depth * 0.8)
    rgb = base_rgb + dL[..., None] * jac[0] + da[..., None] * jac[1] + db[..., None] * jac[2]
    # Foxing: small rust-brown spots.
    n_fox = int(rng.poisson(6.0)) if rng.random() < 0.45 else 0
    if n_fox:
        spots = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(spots)
        for _ in range(n_fox):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.4, 2.2) * max(h, w) / 256
            d.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(60, 200)))
        m = np.asarray(spots.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32)[..., None] / 255.0
        fox = _lab_to_rgb(np.array([lab[0] - 25.0, 12.0, 30.0]))
        rgb = rgb * (1.0 - m) + fox * m
    return rgb, lab, tone


def _random_words(rng: np.random.Generator, n_chars: int, capitalise: bool) -> str:
    out, total = [], 0
    while total < n_chars:
        k = int(rng.integers(1, 10))
        word = "".join(_LETTERS[i] for i in rng.integers(0, len(_LETTERS), k))
        if capitalise and (not out or rng.random() < 0.08):
            word = word.capitalize()
        if rng.random() < 0.07:
            word += "," if rng.random() < 0.6 else "."
        out.append(word)
        total += k + 1
    return " ".join(out)


def _print_line(ink: _Ink, rng: np.random.Generator, x0: float, x1: float, base: float, size: float, font_path: str | None) -> None:
    """Printed text between ``x0`` and ``x1`` (page pixels) with its baseline at ``base``; ``size`` is the em in px."""
    s = SUPERSAMPLE
    font = _font(font_path, round(size * s))
    avg = font.getlength("aeinorst etaoin ") / 16.0
    n = int((x1 - x0) * s / max(avg, 1.0))
    if n < 2:
        return
    text = _random_words(rng, n, capitalise=True)
    # Small type would wash out to a gray haze once box-filtered: thicken it as ink spread does on real paper.
    bold = 1 if size < 9 and rng.random() < 0.7 else 0
    ink.draw.text((x0 * s, base * s), text[:n], font=font, fill=int(rng.integers(190, 256)), anchor="ls", stroke_width=bold)


def _hand_line(ink: _Ink, rng: np.random.Generator, x0: float, x1: float, base: float, xh: float, slant: float, weight: float) -> None:
    """Cursive strokes between ``x0`` and ``x1`` with baseline ``base`` and x-height ``xh`` (page px).

    Each word is one pen stroke: a prolate cycloid (the loops of joined letters) whose per-letter height is
    modulated by ascenders and descenders, slanted, with a little tremor. Pressure varies along it: the
    down-strokes where a slow random pressure curve is high are widened by extra pixels beside the line.
    The whole line is computed at once; each word costs one ``line`` call.
    """
    s = SUPERSAMPLE
    adv = xh * rng.uniform(0.55, 0.9)
    if x1 - x0 < 2 * xh:
        return
    counts = rng.integers(1, 9, size=max(1, int((x1 - x0) / (2.5 * adv)) + 2))
    gaps = xh * rng.uniform(0.6, 1.4, size=counts.size)
    starts = x0 + rng.uniform(0, 2 * xh) + np.concatenate([[0.0], np.cumsum(counts * adv + gaps)[:-1]])
    keep = starts + counts * adv <= x1
    counts, starts = counts[keep], starts[keep]
    if counts.size == 0:
        return
    per = 6  # samples per letter
    steps = counts * per + 1
    first = np.concatenate([[0], np.cumsum(steps)[:-1]])  # first sample of each word
    word = np.repeat(np.arange(counts.size), steps)
    local = np.arange(int(steps.sum())) - first[word]
    k = local / per  # position in letters from the word's start
    t = k * (2.0 * math.pi)
    # Letter heights: 1 (x-height), ascenders > 1, descenders < 0, interpolated along each word.
    amp = np.ones(int(counts.sum() + counts.size) + 1)
    tall = rng.random(amp.size)
    amp[tall < 0.22] = rng.uniform(1.8, 2.6)
    amp[tall > 0.88] = -rng.uniform(1.2, 2.0)
    amp_first = np.concatenate([[0], np.cumsum(counts + 1)[:-1]])
    i0 = amp_first[word] + np.floor(k).astype(np.int64)
    f = k - np.floor(k)
    a = amp[i0] * (1.0 - f) + amp[i0 + 1] * f
    lift = 0.5 * (1.0 - np.cos(t))  # 0 on the baseline, 1 at the x-height
    py = base - xh * lift * np.where(a > 0, a, 1.0) + np.where(a < 0, xh * (-a) * lift * (np.cos(t) < 0), 0.0)
    tremor = rng.normal(0, 0.02 * xh, t.size).cumsum()
    py += tremor - tremor[first][word]
    loop = rng.uniform(0.25, 0.5) * xh
    px = starts[word] + k * adv - loop * np.sin(t) + slant * (base - py)
    pts = (np.stack([px, py], axis=1) * s).ravel().tolist()
    width = max(1, round(weight * 0.7 * s))
    fills = rng.integers(170, 256, size=counts.size).tolist()
    for i, (b, n) in enumerate(zip(first.tolist(), steps.tolist())):
        ink.draw.line(pts[2 * b: 2 * (b + n)], fill=fills[i], width=width)
    # Pressure: heavy samples (going down, pressure high, same word as the next) get extra pixels beside them.
    pressure = np.sin(t * 0.5 + rng.uniform(0, 6.28) + word)
    heavy = np.flatnonzero((pressure[:-1] > 0.0) & (py[1:] > py[:-1]) & (word[1:] == word[:-1]))
    extra = max(1, round(weight * 0.6 * s))
    if heavy.size:
        frac = np.linspace(0.0, 1.0, 4, endpoint=False)
        hx = (px[heavy, None] + (px[heavy + 1] - px[heavy])[:, None] * frac) * s
        hy = (py[heavy, None] + (py[heavy + 1] - py[heavy])[:, None] * frac) * s
        offs = np.arange(1, extra + 1) - 0.5 * width
        dots = np.stack([(hx[..., None] + offs).ravel(), np.repeat(hy[..., None], offs.size, axis=-1).ravel()], axis=1)
        ink.draw.point(dots.ravel().tolist(), fill=int(np.mean(fills)))


def _initial(layers: list[_Ink], rng: np.random.Generator, h: int, w: int, box: tuple[float, float, float, float],
             font_path: str | None, paper_lab: np.ndarray) -> None:
    """A coloured initial: a pigment panel with a paper-coloured letter, or a large pigment letter."""
    s = SUPERSAMPLE
    x, y, size = box[0], box[1], box[2]
    pig = np.array(PIGMENTS[int(rng.integers(0, 5))]) + rng.normal(0, 4, 3)
    col = _Ink(h, w, _lab_to_rgb(pig), opacity=rng.uniform(0.75, 1.0))
    letter = "ABCDEFGHILMNOPQRSTV"[int(rng.integers(0, 19))]
    font = _font(font_path, round(size * 0.95 * s))
    if rng.random() < 0.5:
        col.draw.rectangle((x * s, y * s, (x + size) * s, (y + size) * s), fill=255)
        layers.append(col)
        inner = _Ink(h, w, _lab_to_rgb(paper_lab if rng.random() < 0.6 else np.array(PIGMENTS[3])), opacity=0.95)
        inner.draw.text(((x + size / 2) * s, (y + size / 2) * s), letter, font=font, fill=255, anchor="mm")
        layers.append(inner)
    else:
        col.draw.text(((x + size / 2) * s, (y + size / 2) * s), letter, font=font, fill=255, anchor="mm")
        layers.append(col)


def _stamp(layers: list[_Ink], rng: np.random.Generator, h: int, w: int, font_path: str | None) -> None:
    """An ink stamp: two rings and a word, unevenly inked."""
    s = SUPERSAMPLE
    r = rng.uniform(0.06, 0.12) * min(h, w) * rng.uniform(1.0, 1.6)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    pig = np.array(PIGMENTS[int(rng.choice([0, 1, 4, 5]))]) + rng.normal(0, 4, 3)
    st = _Ink(h, w, _lab_to_rgb(pig), opacity=rng.uniform(0.45, 0.85))
    lw = max(1, round(r * 0.08 * s))
    st.draw.ellipse(((cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s), outline=255, width=lw)
    r2 = r * 0.72
    st.draw.ellipse(((cx - r2) * s, (cy - r2) * s, (cx + r2) * s, (cy + r2) * s), outline=255, width=max(1, lw // 2))
    font = _font(font_path, round(r * 0.45 * s))
    st.draw.text((cx * s, cy * s), _random_words(rng, 4, True)[:5].upper(), font=font, fill=255, anchor="mm")
    layers.append(st)


def _illustration(layers: list[_Ink], rng: np.random.Generator, h: int, w: int, box: tuple[float, float, float, float],
                  outline_rgb: np.ndarray) -> None:
    """A small hand-coloured illustration: a wash panel, blobs of muted pigment, dark outlines."""
    s = SUPERSAMPLE
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if rng.random() < 0.5:
        wash = _Ink(h, w, _lab_to_rgb(np.array(PIGMENTS[int(rng.integers(0, 5))]) + rng.normal(0, 5, 3)),
                    opacity=rng.uniform(0.5, 0.9))
        wash.draw.rectangle((x0 * s, y0 * s, x1 * s, y1 * s), fill=255)
        layers.append(wash)
    lines = _Ink(h, w, outline_rgb, opacity=0.9)
    for _ in range(int(rng.integers(2, 6))):
        pig = np.array(PIGMENTS[int(rng.integers(0, 5))]) + rng.normal(0, 6, 3)
        pig[0] += rng.uniform(0, 15)  # hand colouring is thin: lighter than the pure pigment
        col = _Ink(h, w, _lab_to_rgb(pig), opacity=rng.uniform(0.45, 0.85))
        cx, cy = x0 + rng.uniform(0.2, 0.8) * bw, y0 + rng.uniform(0.2, 0.8) * bh
        k = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * math.pi, k))
        rad = rng.uniform(0.1, 0.35, k) * min(bw, bh)
        poly = [(float((cx + r * math.cos(a)) * s), float((cy + r * math.sin(a)) * s)) for a, r in zip(ang, rad)]
        col.draw.polygon(poly, fill=255)
        lines.draw.line(poly + poly[:1], fill=255, width=max(1, round(0.6 * s)))
        layers.append(col)
    layers.append(lines)
    frame = _Ink(h, w, outline_rgb, opacity=0.8)
    frame.draw.rectangle((x0 * s, y0 * s, x1 * s, y1 * s), outline=255, width=max(1, s))
    layers.append(frame)


def _compose(rgb: np.ndarray, layers: list[_Ink]) -> np.ndarray:
    """Alpha-blend each layer's colour over ``rgb`` (float32 ``[h, w, 3]``, modified in place) where it has ink."""
    for layer in layers:
        box = layer.image.getbbox()
        if box is None:
            continue
        s = SUPERSAMPLE
        x0, y0 = box[0] // s, box[1] // s
        x1, y1 = -(-box[2] // s), -(-box[3] // s)
        crop = layer.image.crop((x0 * s, y0 * s, x1 * s, y1 * s)).resize((x1 - x0, y1 - y0), Image.BOX)
        m = np.asarray(crop, dtype=np.float32)[..., None] * (layer.opacity / 255.0)
        region = rgb[y0:y1, x0:x1]
        region += (layer.rgb - region) * m
    return rgb


def _scan(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Lighting, fold, vignette, rotation, blur, noise and JPEG of a float page; returns uint8 ``[h, w, 3]``."""
    h, w = rgb.shape[:2]
    u = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)[None, :]
    v = (np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.5)[:, None]
    vig = rng.uniform(0.0, 0.25)  # vignetting
    light = (1.0 + rng.uniform(-0.08, 0.08) * u - vig * u * u) + (rng.uniform(-0.08, 0.08) * v - vig * v * v)
    if rng.random() < 0.35:  # fold: a dark crease with a lit side
        vertical = rng.random() < 0.5
        pos = rng.uniform(0.3, 0.7)
        c = (u if vertical else v) + 0.5 - pos
        width = rng.uniform(0.005, 0.03)
        light -= rng.uniform(0.05, 0.2) * np.exp(-((c / width) ** 2))
        light += rng.uniform(0.0, 0.05) * np.exp(-(((c - 2.5 * width) / (2 * width)) ** 2))
    rgb = rgb * light[..., None]
    img = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        angle = rng.normal(0.0, 0.8)
        fill = tuple(int(c) for c in np.asarray(img)[0, 0])
        img = img.rotate(angle, resample=Image.BILINEAR, fillcolor=fill)
    radius = rng.uniform(0.0, 0.8)
    if radius > 0.25:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    out = np.asarray(img, dtype=np.float32)
    sigma = rng.uniform(0.0, 4.0)
    if sigma > 0.5:
        out += rng.standard_normal((h, w, 1), dtype=np.float32) * sigma  # sensor noise is mostly in luminance
    img = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.85:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(35, 93)))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def render_page(seed: int, height: int, width: int) -> np.ndarray:
    """One synthetic document page.

    Args:
        seed: any integer; the same seed gives the same page (with the same installed fonts).
        height, width: output size in pixels (≥ 16 each).
    Returns:
        ``[height, width, 3]`` uint8 sRGB.
    """
    if height < 16 or width < 16:
        raise ValueError(f"page size must be at least 16 x 16, got {height} x {width}")
    rng = np.random.default_rng(seed)
    h, w = height, width
    paper, paper_lab, _ = _paper(rng, h, w)

    # Where the page lies in the frame: full frame, a page on a dark table, or an open book's spread.
    frame = rng.random()
    page_box = (0.0, 0.0, float(w), float(h))
    spread = False
    background = None
    if frame < 0.25:
        mx, my = rng.uniform(0.02, 0.12) * w, rng.uniform(0.02, 0.1) * h
        page_box = (mx, my, w - rng.uniform(0.02, 0.12) * w, h - rng.uniform(0.02, 0.08) * h)
        background = np.array(BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))]) + rng.normal(0, 3, 3)
        spread = w > 0.9 * h and rng.random() < 0.5

    fonts = font_files()
    font_path = fonts[int(rng.integers(0, len(fonts)))] if fonts else None
    _, ink_lab = _pick(rng, INKS)
    ink_rgb = _lab_to_rgb(ink_lab)
    fade = rng.uniform(0.7, 1.0)
    text = _Ink(h, w, ink_rgb, opacity=fade)
    layers: list[_Ink] = []
    rules = _Ink(h, w, _lab_to_rgb(np.array([paper_lab[0] - 25, paper_lab[1] + rng.uniform(-3, 8), paper_lab[2] - rng.uniform(0, 20)])),
                 opacity=rng.uniform(0.3, 0.7))
    rubric_lab = np.array([rng.uniform(*r) for r in RUBRICS[0 if rng.random() < 0.8 else 1]])
    rubric = _Ink(h, w, _lab_to_rgb(rubric_lab), opacity=rng.uniform(0.7, 1.0))
    use_rubric = rng.random() < 0.35

    pages = [page_box]
    if spread:
        mid = (page_box[0] + page_box[2]) / 2
        pages = [(page_box[0], page_box[1], mid - 0.01 * w, page_box[3]), (mid + 0.01 * w, page_box[1], page_box[2], page_box[3])]
    handwritten = rng.random() < 0.6
    kind = rng.choice(["prose", "register", "letter"], p=[0.6, 0.2, 0.2])
    for px0, py0, px1, py1 in pages:
        pw, ph = px1 - px0, py1 - py0
        mx0, mx1 = rng.uniform(0.06, 0.2) * pw, rng.uniform(0.05, 0.15) * pw
        my0, my1 = rng.uniform(0.05, 0.14) * ph, rng.uniform(0.05, 0.16) * ph
        x0, x1, y0, y1 = px0 + mx0, px1 - mx1, py0 + my0, py1 - my1
        n_lines = int(rng.integers(14, 46)) if kind != "letter" else int(rng.integers(10, 24))
        line_h = (y1 - y0) / n_lines
        columns = 2 if (kind == "prose" and pw > 0.9 * ph and rng.random() < 0.6) or rng.random() < 0.15 else 1
        gap = 0.06 * (x1 - x0)
        col_w = (x1 - x0 - gap * (columns - 1)) / columns
        if kind == "register":  # ruled table: a header band, column rules and row rules
            n_cols = int(rng.integers(3, 7))
            cuts = np.sort(rng.uniform(x0, x1, n_cols - 1))
            for c in (x0, *cuts, x1):
                rules.draw.line(((c * SUPERSAMPLE, y0 * SUPERSAMPLE), (c * SUPERSAMPLE, y1 * SUPERSAMPLE)), fill=255, width=1)
            rules.draw.line(((x0 * SUPERSAMPLE, (y0 + 2 * line_h) * SUPERSAMPLE), (x1 * SUPERSAMPLE, (y0 + 2 * line_h) * SUPERSAMPLE)),
                            fill=255, width=SUPERSAMPLE)
        elif rng.random() < 0.35:  # ruled lines of a copybook or register
            for i in range(1, n_lines + 1):
                yl = (y0 + i * line_h) * SUPERSAMPLE
                rules.draw.line(((x0 * SUPERSAMPLE, yl), (x1 * SUPERSAMPLE, yl)), fill=200, width=1)
        if rng.random() < 0.3:  # margin rule
            xm = (x0 - 0.02 * pw) * SUPERSAMPLE
            rules.draw.line(((xm, py0 * SUPERSAMPLE), (xm, py1 * SUPERSAMPLE)), fill=255, width=1)
        slant = rng.uniform(-0.1, 0.45)
        weight = rng.uniform(0.5, 1.1) * max(0.6, line_h / 10.0)
        size = line_h * rng.uniform(0.55, 0.8)
        initial_at = int(rng.integers(0, n_lines // 2)) if rng.random() < 0.3 else -1
        for c in range(columns):
            cx0 = x0 + c * (col_w + gap)
            cx1 = cx0 + col_w
            i = 0
            while i < n_lines:
                base = y0 + (i + 0.8) * line_h
                layer = rubric if use_rubric and rng.random() < 0.1 else text
                lx0 = cx0
                if i == initial_at and c == 0:
                    span = int(rng.integers(2, 4))
                    _initial(layers, rng, h, w, (cx0, y0 + i * line_h + 0.1 * line_h, span * line_h * 0.95, 0), font_path, paper_lab)
                    lx0 = cx0 + span * line_h
                    for k in range(span):
                        b = y0 + (i + k + 0.8) * line_h
                        (_hand_line(layer, rng, lx0, cx1, b, size * 0.45, slant, weight) if handwritten
                         else _print_line(layer, rng, lx0, cx1, b, size, font_path))
                    i += span
                    continue
                if kind == "register" and rng.random() < 0.5:
                    lx0 = cx0 + rng.uniform(0.1, 0.6) * col_w
                end = cx1 - (rng.uniform(0.1, 0.7) * col_w if rng.random() < 0.12 else 0.0)
                if kind == "letter" and i == n_lines - 1:
                    lx0, end = cx0 + 0.55 * col_w, cx1  # signature
                if handwritten:
                    _hand_line(layer, rng, lx0, end, base, size * 0.45, slant, weight)
                else:
                    _print_line(layer, rng, lx0, end, base, size, font_path)
                i += 1
        if rng.random() < 0.3:  # marginalia: a few small lines in the outer margin
            mx = px0 + 0.1 * mx0
            for k in range(int(rng.integers(1, 5))):
                b = y0 + rng.uniform(0.1, 0.9) * (y1 - y0)
                _hand_line(text, rng, mx, px0 + 0.9 * mx0, b, size * 0.3, slant, weight * 0.6)
        if rng.random() < 0.12:
            bx0, by0 = rng.uniform(x0, x0 + 0.5 * (x1 - x0)), rng.uniform(y0, y0 + 0.6 * (y1 - y0))
            bw, bh = rng.uniform(0.25, 0.5) * (x1 - x0), rng.uniform(0.15, 0.35) * (y1 - y0)
            _illustration(layers, rng, h, w, (bx0, by0, min(bx0 + bw, x1), min(by0 + bh, y1)), ink_rgb)
    if rng.random() < 0.12:
        _stamp(layers, rng, h, w, font_path)

    # Show-through: the other side's text, mirrored, blurred and faint.
    if rng.random() < 0.4:
        verso = text.image.transpose(Image.FLIP_LEFT_RIGHT).resize((w, h), Image.BOX)
        verso = verso.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
        m = np.roll(np.asarray(verso, dtype=np.float32), int(rng.integers(-8, 9)), axis=0)[..., None]
        m *= rng.uniform(0.08, 0.3) / 255.0
        paper += (ink_rgb * 0.5 + paper[h // 2, w // 2] * 0.5 - paper) * m
    rgb = _compose(paper, [rules, text, rubric, *layers])

    if background is not None:
        px0, py0, px1, py1 = page_box
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        inside = np.clip(np.minimum.reduce([xx - px0, px1 - xx, yy - py0, py1 - yy]) + 0.5, 0.0, 1.0)[..., None]
        bg = _lab_to_rgb(background) * (1.0 + 0.1 * _smooth_noise(rng, h, w, 4)[..., None])
        rgb = rgb * inside + bg * (1.0 - inside)
        if spread:
            mid = (px0 + px1) / 2
            gutter = 1.0 - 0.45 * np.exp(-(((xx - mid) / (0.03 * w)) ** 2))
            rgb = rgb * gutter[..., None]
    return _scan(rng, rgb)


def paper_ink_ab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ab of a page's paper and of its ink, measured the same way on real and synthetic pages.

    The outer tenth on every side is ignored (scan borders, tables, book edges). Paper is the brighter half of
    the pixels; ink is every pixel at least 25 L below the paper's median L that has paper within 3 px.

    Args:
        rgb: ``[H, W, 3]`` uint8 sRGB.
    Returns:
        (paper ab ``[2]``, ink ab ``[2]``); ink is NaN when the page has fewer than 20 ink pixels.
    """
    from scipy import ndimage
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb)
    h, w = lab.shape[:2]
    lab = lab[h // 10: h - h // 10, w // 10: w - w // 10]
    L = lab[..., 0]
    paper = L >= np.percentile(L, 50)
    near = ndimage.maximum_filter(paper, size=7)
    ink = (L < np.median(L[paper]) - 25.0) & near
    ink_ab = lab[ink, 1:].mean(0) if ink.sum() >= 20 else np.full(2, np.nan)
    return lab[paper, 1:].mean(0), ink_ab


def contact_sheet(seeds: list[int], height: int, width: int, columns: int = 6) -> Image.Image:
    """Pages of ``seeds`` tiled in rows of ``columns`` with a 4 px gray gap."""
    rows = math.ceil(len(seeds) / columns)
    sheet = Image.new("RGB", (columns * (width + 4), rows * (height + 4)), (128, 128, 128))
    for i, seed in enumerate(seeds):
        sheet.paste(Image.fromarray(render_page(seed, height, width)), ((i % columns) * (width + 4), (i // columns) * (height + 4)))
    return sheet


def _main(argv: list[str] | None = None) -> int:
    from ..fs import write_atomically
    from ..imageio import read_image

    p = argparse.ArgumentParser(prog="python -m core.training.synth_documents", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sh = sub.add_parser("sheet", help="save a contact sheet of pages")
    sh.add_argument("out", type=Path)
    sh.add_argument("--count", type=int, default=12)
    sh.add_argument("--first-seed", type=int, default=0)
    sh.add_argument("--size", default="256x192", help="HEIGHTxWIDTH of one page")
    be = sub.add_parser("bench", help="time render_page")
    be.add_argument("--size", default="256x192")
    be.add_argument("--count", type=int, default=200)
    st = sub.add_parser("stats", help="mean paper and ink ab of real scans (folders or files) next to synthetic pages")
    st.add_argument("inputs", nargs="+", type=Path)
    st.add_argument("--exclude", type=Path, default=None, help="a list of paths relative to the inputs' parent to skip")
    st.add_argument("--count", type=int, default=300, help="synthetic pages to measure")
    args = p.parse_args(argv)
    height, width = (int(v) for v in args.size.split("x")) if hasattr(args, "size") else (256, 192)
    if args.cmd == "sheet":
        sheet = contact_sheet(list(range(args.first_seed, args.first_seed + args.count)), height, width)
        write_atomically(args.out, lambda f: sheet.save(f, format="PNG"))
        print(args.out)
    elif args.cmd == "bench":
        render_page(0, height, width)  # imports and font loading are not what is measured
        wall, cpu = [], []
        for seed in range(1, args.count + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            render_page(seed, height, width)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        wall_ms, cpu_ms = 1000 * np.array(wall), 1000 * np.array(cpu)
        # CPU time is what a data-loader worker pays; wall time also counts waiting for a busy machine.
        print(f"render_page {height}x{width}, {args.count} pages: CPU median {np.median(cpu_ms):.1f} ms, "
              f"mean {cpu_ms.mean():.1f} ms, p95 {np.percentile(cpu_ms, 95):.1f} ms; "
              f"wall median {np.median(wall_ms):.1f} ms")
    else:
        skip: set[Path] = set()
        if args.exclude is not None:
            base = args.exclude.parent
            skip = {(base / ln.strip()).resolve() for ln in args.exclude.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
        files = []
        for src in args.inputs:
            files.extend(sorted(src.rglob("*")) if src.is_dir() else [src])
        files = [f for f in files if f.suffix.lower() in (".jpg", ".jpeg", ".png")]
        files = [f for f in files if f.resolve() not in skip]
        real = []
        for f in files:
            with Image.fromarray(read_image(f, max_megapixels=None).rgb8(), "RGB") as im:
                im.thumbnail((256, 256))
                real.append(paper_ink_ab(np.asarray(im)))
        synth = [paper_ink_ab(render_page(seed, 256, 192)) for seed in range(args.count)]
        for name, rows in (("real", real), ("synthetic", synth)):
            paper = np.array([r[0] for r in rows])
            ink = np.array([r[1] for r in rows])
            print(f"{name:10s} {len(rows):4d} pages  paper ab mean ({paper[:, 0].mean():+.2f}, {paper[:, 1].mean():+.2f}) "
                  f"b p10/p50/p90 {np.percentile(paper[:, 1], 10):.1f}/{np.median(paper[:, 1]):.1f}/{np.percentile(paper[:, 1], 90):.1f}  "
                  f"ink ab mean ({np.nanmean(ink[:, 0]):+.2f}, {np.nanmean(ink[:, 1]):+.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
