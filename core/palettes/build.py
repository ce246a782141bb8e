"""Make the named palettes from the TRAINING part of the shared document scans.

``python -m core.palettes.build [--documents DIR] [--out DIR]`` reads every scan of each palette's
source folders except those listed in ``documents/VALIDATION.txt`` (the fixed validation part, never
used), pools their ab histograms over the step-10 grid (each scan weighs the same) and writes
``<name>.json`` (see ``core.reference.palette_to_json``). Deterministic: same files, same output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, one_line, report
from ..fs import write_atomically
from ..imageio import read_image
from ..paths import data_dir
from ..reference import PALETTE_DIR, REFERENCE_MAX_SIDE, ab_histogram, palette_to_json
from ..color import rgb_to_lab

# palette -> (description, source folders of documents/)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "parchment": ("medieval manuscripts on parchment", ("cremma_medieval_fr", "cremma_medieval_lat")),
    "aged-paper": ("18th-century manuscripts and soldiers' wills on aged paper", ("cremma_mss18", "testaments_poilus")),
    "white-paper": ("notarial registers on white paper", ("lectaurep_repertoires",)),
}
SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def validation_files(documents: Path) -> set[str]:
    """The fixed validation part (paths relative to ``documents``)."""
    lines = (documents / "VALIDATION.txt").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def training_scans(documents: Path, folders: tuple[str, ...]) -> list[Path]:
    """Scans of ``folders`` not in the validation part, sorted."""
    held_out = validation_files(documents)
    files = []
    for folder in folders:
        for path in sorted((documents / folder).iterdir()):
            if path.suffix.lower() in SUFFIXES and f"{folder}/{path.name}" not in held_out:
                files.append(path)
    return files


def scan_histogram(path: Path) -> torch.Tensor:
    """``[23, 23]`` ab histogram of one scan reduced to ``REFERENCE_MAX_SIDE``."""
    with Image.fromarray(read_image(path, max_megapixels=None).rgb8(), "RGB") as im:
        im.thumbnail((REFERENCE_MAX_SIDE, REFERENCE_MAX_SIDE), Image.BOX)
        rgb = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return ab_histogram(rgb_to_lab(rgb)[1:])


def build(documents: Path, out: Path) -> dict[str, int]:
    """Write every palette into ``out``; returns {name: number of scans used}."""
    used = {}
    for name, (description, folders) in SOURCES.items():
        files = training_scans(documents, folders)
        if not files:
            raise FileNotFoundError(f"no training scans for {name!r} in {documents} ({', '.join(folders)})")
        hist = torch.stack([scan_histogram(f) for f in files]).mean(dim=0)
        data = palette_to_json(hist, name=name, description=description, sources=list(folders), scans=len(files))
        text = json.dumps(data, separators=(",", ":")) + "\n"
        write_atomically(out / f"{name}.json", lambda f, t=text: f.write(t.encode("utf-8")))
        used[name] = len(files)
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.palettes.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=Path, default=data_dir() / "documents")
    parser.add_argument("--out", type=Path, default=PALETTE_DIR)
    args = parser.parse_args(argv)
    try:
        used = build(args.documents, args.out)
    except OSError as error:  # the documents folder missing or unreadable, or the palette not writable
        return report("python -m core.palettes.build", InputError(one_line(error)))
    for name, count in used.items():
        print(f"{name}: {count} training scans -> {args.out / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
