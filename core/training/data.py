"""Training data: which files train, which are held back or validate, a decoded uint8 cache, sampling by
source, crops (augmented where the model trains: CPU or GPU) and simulated user hints.

Sources (folders of ``shared/data``) are sampled by weight, not by file, so that no source dominates what the
model sees (the flower and 150-px scene folders are a quarter of the files but little of the variety).
Validation splits are never trained on; every ``held_back_every``-th remaining file of each source is held
back to choose the best checkpoint and the prior correction.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..color import rgb_to_lab
from ..fs import write_atomically
from ..imageio import read_image
from ..paths import data_dir

VAL_SPLIT_FILE = Path(__file__).with_name("val_split.txt")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# An image whose |ab| never exceeds this is treated as grayscale (as in the paper's code).
GRAY_CHROMA_LIMIT = 5.0
# Folders of shared/data whose images train (each one source), and folders whose subfolders are sources.
FLAT_SOURCES = ("imagenet-samples", "bsds500/train", "bsds500/val")
NESTED_SOURCES = ("photos", "documents")
# Per-folder validation lists (paths relative to that folder), besides VAL_SPLIT_FILE.
NESTED_VALIDATION = "VALIDATION.txt"
# Small photo folders are sampled together as one source.
MISC_PHOTO_MIN_FILES = 100
SYNTHETIC_SOURCE = "synthetic-documents"


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_list(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def validation_split() -> list[str]:
    """The fixed first-generation validation list (paths relative to ``shared/data``)."""
    return _read_list(VAL_SPLIT_FILE)


def validation_files(root: Path | None = None) -> set[str]:
    """Every validation path (relative to ``root``): the v1 list plus ``photos/`` and ``documents/`` lists."""
    root = root or data_dir()
    rel = set(validation_split())
    for folder in NESTED_SOURCES:
        rel |= {f"{folder}/{p}" for p in _read_list(root / folder / NESTED_VALIDATION)}
    return rel


def source_of(rel: str) -> str:
    """The sampling source of a file path relative to ``shared/data``."""
    parts = rel.split("/")
    if parts[0] == "documents":
        return "documents"
    if parts[0] == "photos":
        return f"photos/{parts[1]}"
    return "/".join(parts[:-1])


@dataclass
class TrainingPlan:
    """Files by role: ``sources`` (source name -> training files), ``held_back`` and ``validation``."""

    sources: dict[str, list[Path]]
    held_back: list[Path]
    validation: list[Path]

    @property
    def train_files(self) -> list[Path]:
        return [p for files in self.sources.values() for p in files]


def training_plan(
    root: Path | None = None, held_back_every: int = 20, misc_below: int = MISC_PHOTO_MIN_FILES
) -> TrainingPlan:
    """Split every image under ``root`` into training sources, a held-back part and the validation splits.

    Photo folders with fewer than ``misc_below`` training files form one source ``photos/misc``.
    """
    root = root or data_dir()
    val_rel = validation_files(root)
    candidates: list[Path] = []
    for folder in FLAT_SOURCES:
        candidates += list_images(root / folder)
    for folder in NESTED_SOURCES:
        base = root / folder
        if base.is_dir():
            for sub in sorted(p for p in base.iterdir() if p.is_dir()):
                candidates += list_images(sub)
    by_source: dict[str, list[Path]] = {}
    validation: list[Path] = []
    for p in candidates:
        rel = p.relative_to(root).as_posix()
        if rel in val_rel:
            validation.append(p)
        else:
            by_source.setdefault(source_of(rel), []).append(p)
    merged: dict[str, list[Path]] = {}
    for name, files in by_source.items():
        small = name.startswith("photos/") and len(files) < misc_below
        merged.setdefault("photos/misc" if small else name, []).extend(files)
    sources, held = {}, []
    for name in sorted(merged):
        files = sorted(merged[name])
        every = held_back_every if held_back_every > 0 else len(files) + 1
        sources[name] = [p for i, p in enumerate(files) if i % every != every - 1]
        held += [p for i, p in enumerate(files) if i % every == every - 1]
    return TrainingPlan(sources, held, validation)


def train_and_val_files(root: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(training files, validation files) of :func:`training_plan` with nothing held back."""
    plan = training_plan(root, held_back_every=0)
    return plan.train_files, plan.validation


def source_weights(
    counts: dict[str, int], shares: dict[str, float] | None = None, cap: float = 0.3, damp: dict[str, float] | None = None
) -> dict[str, float]:
    """Sampling probability of each source: ``sqrt(count) × damp`` normalised, fixed ``shares`` set aside first.

    Args:
        counts: files per source (sources with 0 files get probability 0).
        shares: sources given a fixed probability (e.g. documents), taken out before the rest is split.
        cap: no source of the rest gets more than this probability; the excess is spread over the others.
        damp: extra multipliers for sources whose files are many but alike.
    """
    shares = {k: v for k, v in (shares or {}).items() if counts.get(k, 0) > 0}
    damp = damp or {}
    rest = {k: math.sqrt(n) * damp.get(k, 1.0) for k, n in counts.items() if n > 0 and k not in shares}
    budget = 1.0 - sum(shares.values())
    out = dict(shares)
    fixed: dict[str, float] = {}
    while rest:
        total = sum(rest.values())
        scale = (budget - sum(fixed.values())) / total
        over = {k for k, v in rest.items() if v * scale > cap}
        if not over:
            out.update({k: v * scale for k, v in rest.items()})
            break
        for k in over:
            fixed[k] = cap
            del rest[k]
    out.update(fixed)
    return out


def _decode(path: Path, short_side: int) -> torch.Tensor | None:
    """``[3, H, W]`` uint8 sRGB with the shorter side at most ``short_side``; None for grayscale files.

    The file is decoded by ``core.imageio.read_image`` (as ``tinct colorize`` reads it), at 8 bits."""
    decoded = read_image(path, max_megapixels=None)
    if decoded.is_gray:
        return None
    with Image.fromarray(decoded.rgb8(), "RGB") as im:
        w, h = im.size
        if min(w, h) > short_side:
            s = short_side / min(w, h)
            im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
        rgb = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
    if is_grayscale(rgb):
        return None
    return rgb


def lab_of(rgb: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` uint8 sRGB (any device) -> ``[1, 3, H, W]`` float32 Lab on the CPU."""
    return rgb_to_lab(rgb[None].float().cpu() / 255.0)


def is_grayscale(rgb: torch.Tensor) -> bool:
    """True when no pixel of ``rgb`` (``[3, H, W]`` uint8) has ``|ab|`` above :data:`GRAY_CHROMA_LIMIT`."""
    return bool(lab_of(rgb)[0, 1:].abs().amax() <= GRAY_CHROMA_LIMIT)


@dataclass
class ImageCache:
    """Decoded images, each ``[3, H, W]`` uint8 sRGB, with the source index of each (``sources[k]``)."""

    images: list[torch.Tensor]
    names: list[str]
    source_index: list[int]
    sources: list[str]
    skipped_gray: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, groups: dict[str, list[Path]], short_side: int, cache_dir: Path | None = None) -> "ImageCache":
        """Decode every file of ``groups`` (source -> files), or load them from ``cache_dir`` when cached before."""
        listing = "\n".join(f"{g}:{p}" for g, files in groups.items() for p in files) + f"|{short_side}|u8"
        key = hashlib.sha256(listing.encode()).hexdigest()[:16]
        cache_file = cache_dir / f"imagecache-{key}.pt" if cache_dir else None
        if cache_file is not None and cache_file.exists():
            return cls(**torch.load(cache_file, weights_only=True))
        images, names, index, gray = [], [], [], []
        sources = list(groups)
        for k, files in enumerate(groups.values()):
            for p in files:
                rgb = _decode(p, short_side)
                if rgb is None:
                    gray.append(p.name)
                    continue
                images.append(rgb)
                names.append(p.name)
                index.append(k)
        blob = {"images": images, "names": names, "source_index": index, "sources": sources, "skipped_gray": gray}
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(cache_file, lambda f: torch.save(blob, f))
        return cls(**blob)

    def add(self, source: str, images: list[torch.Tensor], names: list[str]) -> None:
        """Append generated images as one more source."""
        self.sources.append(source)
        k = len(self.sources) - 1
        self.images += images
        self.names += names
        self.source_index += [k] * len(images)

    def to(self, device: torch.device | str) -> "ImageCache":
        """The same cache with its tensors on ``device`` (the GPU path keeps the uint8 images there)."""
        return ImageCache([im.to(device) for im in self.images], self.names, self.source_index, self.sources,
                          self.skipped_gray)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in self.sources}
        for k in self.source_index:
            out[self.sources[k]] += 1
        return out


class SourceSampler:
    """Draws image indices of an :class:`ImageCache`: a source by its weight, then one of its images uniformly."""

    def __init__(self, cache: ImageCache, weights: dict[str, float]) -> None:
        self.members = [[] for _ in cache.sources]
        for i, k in enumerate(cache.source_index):
            self.members[k].append(i)
        w = [weights.get(s, 0.0) if self.members[k] else 0.0 for k, s in enumerate(cache.sources)]
        if sum(w) <= 0:
            raise ValueError("no source with images has a positive sampling weight")
        self.probs = torch.tensor(w, dtype=torch.float64) / sum(w)

    def draw(self, count: int, generator: torch.Generator) -> list[int]:
        srcs = torch.multinomial(self.probs, count, replacement=True, generator=generator).tolist()
        picks = torch.rand(count, generator=generator, dtype=torch.float64).tolist()
        return [self.members[s][min(len(self.members[s]) - 1, int(u * len(self.members[s])))] for s, u in zip(srcs, picks)]

    def image_weights(self) -> torch.Tensor:
        """Probability of drawing each image, ``[len(cache.images)]`` float64."""
        out = torch.zeros(sum(len(m) for m in self.members), dtype=torch.float64)
        for k, m in enumerate(self.members):
            if m:
                out[m] = self.probs[k] / len(m)
        return out


def random_crop_batch(
    cache: ImageCache,
    indices: list[int],
    size: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    min_scale: float = 0.3,
) -> torch.Tensor:
    """Random resized crops (area ``min_scale``..1, aspect 3/4..4/3) with random horizontal flips, as Lab.

    The crop parameters come from ``generator`` (CPU, so a run is reproducible on any device); the pixels are
    cropped, resized and converted on the cache's device.

    Returns:
        ``[len(indices), 3, size, size]`` float32 Lab (L in 0..100) on ``device``.
    """
    out = torch.empty(len(indices), 3, size, size, device=device)
    for b, i in enumerate(indices):
        img = cache.images[i]
        _, h, w = img.shape
        r = torch.rand(5, generator=generator).tolist()
        area = (min_scale + (1.0 - min_scale) * r[0]) * h * w
        aspect = float(np.exp(np.log(3 / 4) + (np.log(4 / 3) - np.log(3 / 4)) * r[1]))
        ch = min(h, max(8, round((area / aspect) ** 0.5)))
        cw = min(w, max(8, round((area * aspect) ** 0.5)))
        y0 = int(r[2] * (h - ch + 1))
        x0 = int(r[3] * (w - cw + 1))
        crop = img[None, :, y0 : y0 + ch, x0 : x0 + cw].to(device, torch.float32) / 255.0
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if r[4] < 0.5:
            crop = crop.flip(-1)
        out[b] = crop[0]
    return rgb_to_lab(out.clamp(0.0, 1.0))


def center_batch(cache: ImageCache, start: int, count: int, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Deterministic centre squares resized to ``size``: ``[count, 3, size, size]`` float32 Lab."""
    out = []
    for img in cache.images[start : start + count]:
        _, h, w = img.shape
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        crop = img[None, :, y0 : y0 + s, x0 : x0 + s].to(device, torch.float32) / 255.0
        out.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0])
    return rgb_to_lab(torch.stack(out).clamp(0.0, 1.0))


@dataclass(frozen=True)
class HintSimulation:
    """Simulated user hints as in Zhang et al. 2017.

    With probability ``p_none`` an image gets no hint; otherwise the number of points is geometric with
    success probability ``p_geometric`` (at least 1, at most ``max_points``), each a square patch of side
    uniform in ``sizes`` (pixels of the training crop) at a uniform position, hinting the patch's mean
    true ab.
    """

    p_none: float = 0.5
    p_geometric: float = 1 / 8
    max_points: int = 32
    sizes: tuple[int, int] = (1, 9)


def simulate_hints(
    ab: torch.Tensor, generator: torch.Generator, sim: HintSimulation = HintSimulation()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hints drawn from the true ``ab`` (``[N, 2, H, W]``, ab units) with the CPU ``generator``.

    Returns:
        ``hint_ab`` ``[N, 2, H, W]`` (ab units, 0 where there is no hint) and ``hint_mask`` ``[N, 1, H, W]``
        in {0, 1}, on ``ab``'s device.
    """
    n, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = torch.zeros(n, 1, h, w, device=ab.device, dtype=ab.dtype)
    lo, hi = sim.sizes
    for i in range(n):
        if torch.rand(1, generator=generator).item() < sim.p_none:
            continue
        u = torch.rand(1, generator=generator).item()
        points = 1 if sim.p_geometric >= 1 else 1 + int(math.log(max(u, 1e-12)) / math.log(1.0 - sim.p_geometric))
        for _ in range(min(points, sim.max_points)):
            s = int(torch.randint(lo, hi + 1, (1,), generator=generator))
            y = int(torch.randint(0, max(1, h - s + 1), (1,), generator=generator))
            x = int(torch.randint(0, max(1, w - s + 1), (1,), generator=generator))
            patch = ab[i, :, y : y + s, x : x + s]
            hint_ab[i, :, y : y + s, x : x + s] = patch.mean(dim=(1, 2), keepdim=True)
            mask[i, :, y : y + s, x : x + s] = 1.0
    return hint_ab, mask
