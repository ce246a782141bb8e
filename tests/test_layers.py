"""Layers point one way (docs/CONTRACTS.md), checked on every import statement, lazy ones included."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURING = ("core.bench", "core.evaluate", "core.metrics", "core.post.measure", "core.post.synthetic",
             "core.post.cli", "core.video.evaluate", "core.video.synth", "core.training", "core.content_fit",
             "core.evaluate_pages")
# The library the commands, the worker and the plug-in's engine run on (command modules may also host a
# measuring command, so they are not listed).
RUNTIME = ("core/__init__.py", "core/errors.py", "core/color.py", "core/bins.py", "core/decode.py", "core/upsample.py",
           "core/device.py",
           "core/loading.py", "core/pipeline.py", "core/imageio.py", "core/paths.py", "core/models", "core/worker",
           "core/content.py", "core/fs.py", "core/pixels.py", "core/pixel_tensors.py", "core/geometry.py",
           "core/stages.py", "core/hints.py",
           "core/post/__init__.py", "core/post/crf.py", "core/post/segments.py", "core/post/tv.py",
           "core/post/mask.py", "core/post/steps.py", "core/video/io.py", "core/video/join.py", "core/video/pipeline.py",
           "core/video/temporal.py", "core/video/flow.py", "core/video/frames.py")
PURE = ("core/color.py", "core/bins.py", "core/decode.py", "core/upsample.py", "core/post/crf.py",
        "core/post/segments.py", "core/post/tv.py", "core/post/mask.py", "core/post/steps.py", "core/pixels.py",
        "core/geometry.py", "core/stages.py")
# Read without the engine (the image reader, the worker's request parsing): numpy and Pillow, never torch.
NO_TORCH = ("core/fs.py", "core/pixels.py", "core/imageio.py")


def _files(entries: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for entry in entries:
        path = ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, anywhere in the file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_layers_runtime_never_imports_measuring_code():
    offending = {str(f.relative_to(ROOT)): sorted(n for n in imported_modules(f) if _within(n, MEASURING))
                 for f in _files(RUNTIME)}
    assert {f: n for f, n in offending.items() if n} == {}


def test_layers_pure_maths_imports_no_io_cli_or_gimp():
    edge = ("PIL", "cv2", "av", "core.imageio", "core.pipeline", "core.cli", "core.worker", "core.video",
            "gimp_plugin", "weights_fetch", "requests", "tqdm")
    offending = {str(f.relative_to(ROOT)): sorted(n for n in imported_modules(f) if _within(n, edge))
                 for f in _files(PURE)}
    assert {f: n for f, n in offending.items() if n} == {}


def test_layers_files_and_pixels_load_without_torch():
    offending = {str(f.relative_to(ROOT)): sorted(n for n in imported_modules(f) if _within(n, ("torch",)))
                 for f in _files(NO_TORCH)}
    assert {f: n for f, n in offending.items() if n} == {}
    # the atomic writer: standard library only, and core.errors (itself standard library only, tested below)
    others = {n for n in imported_modules(ROOT / "core" / "fs.py")
              if n.split(".")[0] not in {*sys.stdlib_module_names, "__future__"}}
    assert others <= {"core.errors", "core.errors.OutputError"}


def test_layers_pipeline_orchestrates_and_the_stages_live_in_their_modules():
    """The Colorizer calls the geometry, pixel, timing and colour modules; none of them calls back."""
    stage_modules = ("core/geometry.py", "core/pixels.py", "core/pixel_tensors.py", "core/stages.py", "core/color.py")
    offending = {m: sorted(n for n in imported_modules(ROOT / m) if _within(n, ("core.pipeline",)))
                 for m in stage_modules}
    assert {f: n for f, n in offending.items() if n} == {}
    pipeline = imported_modules(ROOT / "core" / "pipeline.py")
    assert {"core.geometry", "core.pixels", "core.pixel_tensors", "core.stages"} <= pipeline


def test_layers_plugin_uses_the_standard_library_and_gimp_only():
    folder = ROOT / "gimp_plugin" / "tinct_colorize"
    siblings = tuple(p.stem for p in folder.glob("*.py"))
    allowed = (*sys.stdlib_module_names, "gi", *siblings, "gimp_plugin.tinct_colorize")
    offending = {p.name: sorted(n for n in imported_modules(p) if n and not _within(n, allowed))
                 for p in folder.glob("*.py")}
    assert {f: n for f, n in offending.items() if n} == {}


def test_layers_core_never_imports_the_plugin():
    offending = {str(f.relative_to(ROOT)): sorted(n for n in imported_modules(f) if _within(n, ("gimp_plugin",)))
                 for f in sorted((ROOT / "core").rglob("*.py"))}
    assert {f: n for f, n in offending.items() if n} == {}


def test_layers_modules_shared_with_the_plugin_use_the_standard_library_only():
    """The files the plug-in loads into GIMP's Python (``tinct_shared.SHARED``) import nothing else."""
    sys.path.insert(0, str(ROOT / "gimp_plugin" / "tinct_colorize"))
    try:
        from tinct_shared import SHARED
    finally:
        sys.path.pop(0)
    assert {"core/options.py", "core/worker/wire.py", "core/worker/rendezvous.py"} <= set(SHARED.values())
    offending = {source: sorted(n for n in imported_modules(ROOT / source)
                                if n and not _within(n, sys.stdlib_module_names))
                 for source in SHARED.values()}
    assert {f: n for f, n in offending.items() if n} == {}


def test_layers_import_scanner_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    package = tmp_path / "core" / "video"
    package.mkdir(parents=True)
    module = package / "sample.py"
    module.write_text("import os\nfrom ..bench import run\n\ndef f():\n    from . import synth\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert {"os", "core.bench", "core.bench.run", "core.video", "core.video.synth"} <= imported_modules(module)


def test_layers_weights_fetch_imports_nothing_from_the_engine():
    offending = {str(f.relative_to(ROOT)): sorted(n for n in imported_modules(f) if _within(n, ("core",)))
                 for f in sorted((ROOT / "weights_fetch").rglob("*.py"))}
    assert {f: n for f, n in offending.items() if n} == {}


def test_layers_errors_module_needs_only_the_standard_library():
    """``core/errors.py`` is imported by every command and the worker: stdlib, and the two families it registers."""
    allowed = (*sys.stdlib_module_names, "__future__", "core.options", "weights_fetch.errors")
    names = imported_modules(ROOT / "core" / "errors.py")
    assert sorted(n for n in names if not _within(n, allowed)) == []
