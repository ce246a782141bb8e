"""Fit and measure the document detector of ``core.content`` (``python -m core.content_fit fit|report``).

``fit`` computes :func:`core.content.content_features` on TRAINING files only: photos (``photos/`` minus its
``VALIDATION.txt``, at most ``--per-source`` per source folder, plus ImageNet samples and BSDS500 train outside
the v1 split), document scans (``documents/`` minus its ``VALIDATION.txt``) and synthetic pages
(``core.training.synth_documents``); fits a class-balanced, L2-regularised logistic regression by Newton's
method and writes ``core/content_detector.json`` (the coefficients, the feature standardisation, and what it was
fitted on). ``report`` gives the accuracy on the validation sets (photos, v1, documents) and the time per image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .color import rgb_to_l
from .content import DETECTOR_FILE, DOCUMENT_THRESHOLD, FEATURE_NAMES, content_features, score_features
from .fs import write_atomically
from .paths import data_dir


def _read_list(path: Path) -> set[str]:
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def image_L(path: Path) -> torch.Tensor:
    """``[1, 1, H, W]`` L* of an image file (a colour file counts as its L*, as in the pipeline)."""
    from .imageio import read_image

    rgb = read_image(path, max_megapixels=None).rgb8().astype(np.float32) / 255.0
    return rgb_to_l(torch.from_numpy(rgb).permute(2, 0, 1)[None])


def training_files(root: Path, per_source: int) -> tuple[list[Path], list[Path]]:
    """(photo files, document files) of the training parts, evenly spread within each source."""
    from .training.data import list_images, validation_split

    photo_val = _read_list(root / "photos" / "VALIDATION.txt")
    doc_val = _read_list(root / "documents" / "VALIDATION.txt")
    v1 = set(validation_split())
    photos: list[Path] = []
    for source in sorted(p for p in (root / "photos").iterdir() if p.is_dir()):
        files = [f for f in list_images(source) if f"{source.name}/{f.name}" not in photo_val]
        step = max(1, len(files) // per_source)
        photos.extend(files[::step][:per_source])
    for folder in ("imagenet-samples", "bsds500/train"):
        files = [f for f in list_images(root / folder) if f.relative_to(root).as_posix() not in v1]
        step = max(1, len(files) // per_source)
        photos.extend(files[::step][:per_source])
    docs = [f for source in sorted(p for p in (root / "documents").iterdir() if p.is_dir())
            for f in list_images(source) if f"{source.name}/{f.name}" not in doc_val]
    return photos, docs


def synthetic_L(count: int, first_seed: int) -> list[torch.Tensor]:
    """L* of ``count`` synthetic pages of varied sizes and orientations."""
    from .training.synth_documents import render_page

    sizes = ((256, 192), (384, 288), (192, 256), (320, 240), (512, 384))
    out = []
    for i in range(count):
        h, w = sizes[i % len(sizes)]
        rgb = render_page(first_seed + i, h, w).astype(np.float32) / 255.0
        out.append(rgb_to_l(torch.from_numpy(rgb).permute(2, 0, 1)[None]))
    return out


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression by Newton's method on standardised ``X`` ``[n, F]``; ``y`` in {0, 1}."""
    n, f = X.shape
    weights = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * n
    A = np.hstack([X, np.ones((n, 1))])
    theta = np.zeros(f + 1)
    reg = np.full(f + 1, l2)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-A @ theta))
        grad = A.T @ (weights * (p - y)) / n + reg * theta
        hess = (A * (weights * p * (1 - p))[:, None]).T @ A / n + np.diag(reg)
        delta = np.linalg.solve(hess, grad)
        theta -= delta
        if np.abs(delta).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def _features(Ls) -> np.ndarray:
    return torch.stack([content_features(L) for L in Ls]).numpy().astype(np.float64)


def fit(root: Path, per_source: int, synthetic: int, out: Path) -> dict:
    photos, docs = training_files(root, per_source)
    print(f"features: {len(photos)} photos, {len(docs)} document scans, {synthetic} synthetic pages", file=sys.stderr)
    Xp = _features(image_L(p) for p in photos)
    Xd = _features(image_L(p) for p in docs)
    Xs = _features(synthetic_L(synthetic, first_seed=1_000_000))
    X = np.vstack([Xp, Xd, Xs])
    y = np.concatenate([np.zeros(len(Xp)), np.ones(len(Xd) + len(Xs))])
    # Every 5th row held back to report a fair training-side accuracy; the saved fit uses all rows.
    held = np.arange(len(y)) % 5 == 0
    mean, scale = X.mean(0), X.std(0) + 1e-6
    w, b = fit_logistic((X[~held] - mean) / scale, y[~held])
    held_acc = float((((X[held] - mean) / scale @ w + b > 0) == (y[held] == 1)).mean())
    w, b = fit_logistic((X - mean) / scale, y)
    pred = (X - mean) / scale @ w + b > 0
    groups = {"photos": (pred[: len(Xp)] == 0).mean(), "documents": pred[len(Xp): len(Xp) + len(Xd)].mean(),
              "synthetic": pred[len(Xp) + len(Xd):].mean()}
    data = {
        "features": list(FEATURE_NAMES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "weights": w.tolist(),
        "bias": b,
        "fitted_on": {"photos": len(Xp), "document_scans": len(Xd), "synthetic_pages": synthetic,
                      "per_source": per_source, "command": "python -m core.content_fit fit"},
        "training_accuracy": {k: round(float(v), 4) for k, v in groups.items()},
        "held_back_accuracy": round(held_acc, 4),
    }
    write_atomically(out, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))
    return data


def report(root: Path, limit: int | None) -> dict:
    """Accuracy of the committed detector on the validation sets and its time per image."""
    from .evaluate import set_files

    sets = {"photos": (set_files("photos", root), 0), "v1": (set_files("v1", root), 0),
            "documents": (set_files("documents-written", root) + set_files("documents-illuminated", root), 1)}
    result = {}
    for name, (files, label) in sets.items():
        files = files[:limit] if limit else files
        correct, times, wrong = 0, [], []
        for f in files:
            L = image_L(f)
            t0 = time.perf_counter()
            score = float(score_features(content_features(L)))
            times.append(time.perf_counter() - t0)
            ok = (score >= DOCUMENT_THRESHOLD) == bool(label)
            correct += ok
            if not ok:
                wrong.append(f"{f.parent.name}/{f.name} ({score:.2f})")
        result[name] = {"images": len(files), "accuracy": correct / max(len(files), 1),
                        "ms_per_image_median": 1000 * float(np.median(times)), "wrong": wrong}
    big = torch.rand(1, 1, 3000, 4000) * 100  # a 12 MP input: the cost is the area downsampling
    t0 = time.perf_counter()
    for _ in range(3):
        score_features(content_features(big))
    result["12MP_ms"] = 1000 * (time.perf_counter() - t0) / 3
    return result


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.content_fit", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the detector on training files and write core/content_detector.json")
    f.add_argument("--per-source", type=int, default=60, help="photos per source folder (default 60)")
    f.add_argument("--synthetic", type=int, default=400, help="synthetic pages (default 400)")
    f.add_argument("--out", type=Path, default=DETECTOR_FILE)
    r = sub.add_parser("report", help="accuracy on the validation sets and time per image")
    r.add_argument("--limit", type=int, default=None)
    for q in (f, r):
        q.add_argument("--data", type=Path, default=None, help="shared data folder (default: core.paths.data_dir())")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    root = args.data or data_dir()
    if args.cmd == "fit":
        print(json.dumps(fit(root, args.per_source, args.synthetic, args.out), indent=1))
    else:
        print(json.dumps(report(root, args.limit), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
