"""Training data: image lists, the fixed validation split, grayscale detection and an in-memory Lab cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..imageio import write_atomically
from ..paths import data_dir

VAL_SPLIT_FILE = Path(__file__).with_name("val_split.txt")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# An image whose |ab| never exceeds this is treated as grayscale (as in the paper's code).
GRAY_CHROMA_LIMIT = 5.0
TRAIN_SOURCES = ("imagenet-samples", "bsds500/train", "bsds500/val")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def validation_split() -> list[str]:
    """The fixed validation list (paths relative to ``shared/data``)."""
    lines = VAL_SPLIT_FILE.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def train_and_val_files(root: Path | None = None) -> tuple[list[Path], list[Path]]:
    """All candidate images under ``root`` split into (train, validation) by :func:`validation_split`."""
    root = root or data_dir()
    val_rel = set(validation_split())
    train, val = [], []
    for source in TRAIN_SOURCES:
        for p in list_images(root / source):
            rel = p.relative_to(root).as_posix()
            (val if rel in val_rel else train).append(p)
    return train, val


def load_lab(path: Path, short_side: int | None) -> np.ndarray | None:
    """Read an image as float32 Lab ``[H, W, 3]``, resized so its shorter side is ``short_side``.

    Returns None for grayscale images (mode L/LA/I, or max chroma ≤ :data:`GRAY_CHROMA_LIMIT`).
    """
    from skimage.color import rgb2lab

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "RGBA", "P", "CMYK"):
            return None
        im = im.convert("RGB")
        if short_side is not None:
            w, h = im.size
            s = short_side / min(w, h)
            im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
        rgb = np.asarray(im, dtype=np.float32) / 255.0
    lab = rgb2lab(rgb).astype(np.float32)
    if np.abs(lab[..., 1:]).max() <= GRAY_CHROMA_LIMIT:
        return None
    return lab


@dataclass
class LabCache:
    """Decoded training images, each a ``[3, H, W]`` float16 Lab tensor (shorter side fixed)."""

    images: list[torch.Tensor]
    names: list[str]
    skipped_gray: list[str]

    @classmethod
    def build(cls, files: list[Path], short_side: int, cache_dir: Path | None = None) -> "LabCache":
        """Decode ``files`` (or load them from ``cache_dir`` when an identical list was cached before)."""
        key = hashlib.sha256(("\n".join(map(str, files)) + f"|{short_side}").encode()).hexdigest()[:16]
        cache_file = cache_dir / f"labcache-{key}.pt" if cache_dir else None
        if cache_file is not None and cache_file.exists():
            blob = torch.load(cache_file, weights_only=True)
            return cls(blob["images"], blob["names"], blob["skipped_gray"])
        images, names, gray = [], [], []
        for p in files:
            lab = load_lab(p, short_side)
            if lab is None:
                gray.append(p.name)
                continue
            images.append(torch.from_numpy(lab).permute(2, 0, 1).to(torch.float16).contiguous())
            names.append(p.name)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            blob = {"images": images, "names": names, "skipped_gray": gray}
            write_atomically(cache_file, lambda f: torch.save(blob, f))
        return cls(images, names, gray)


def random_crop_batch(
    cache: LabCache, batch: int, size: int, generator: torch.Generator, min_scale: float = 0.3
) -> torch.Tensor:
    """A batch of random resized crops with random horizontal flips.

    Returns:
        ``[batch, 3, size, size]`` float32 Lab (L in 0..100).
    """
    out = torch.empty(batch, 3, size, size)
    idx = torch.randint(len(cache.images), (batch,), generator=generator)
    for b, i in enumerate(idx.tolist()):
        img = cache.images[i]
        _, h, w = img.shape
        r = torch.rand(4, generator=generator).tolist()
        area = (min_scale + (1.0 - min_scale) * r[0]) * h * w
        aspect = float(np.exp(np.log(3 / 4) + (np.log(4 / 3) - np.log(3 / 4)) * r[1]))
        ch = min(h, max(8, round((area / aspect) ** 0.5)))
        cw = min(w, max(8, round((area * aspect) ** 0.5)))
        y0 = int(r[2] * (h - ch + 1))
        x0 = int(r[3] * (w - cw + 1))
        crop = img[None, :, y0 : y0 + ch, x0 : x0 + cw].float()
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if torch.rand(1, generator=generator).item() < 0.5:
            crop = crop.flip(-1)
        out[b] = crop[0]
    return out


def center_batch(cache: LabCache, start: int, count: int, size: int) -> torch.Tensor:
    """Deterministic centre crops resized to ``size`` for validation: ``[count, 3, size, size]``."""
    out = []
    for img in cache.images[start : start + count]:
        _, h, w = img.shape
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        crop = img[None, :, y0 : y0 + s, x0 : x0 + s].float()
        out.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0])
    return torch.stack(out)
