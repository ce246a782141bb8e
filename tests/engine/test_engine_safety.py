"""Bad inputs and bad places: every one is one line, nothing a user owns is lost, memory stays bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine_stand_ins import BUILT, FAILURES, TinyLogitsModel, gradient_gray
from core import cli
from core.errors import FAILED, INPUT, OUTPUT, USAGE
from core.imageio import read_image

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


@pytest.fixture
def loads(install_named):
    """Names "tiny" and "fragile-<error>" for the commands; yields the list of models built (loaded)."""
    install_named({"tiny": ("test-tiny-logits", {}),
                   **{f"fragile-{error}": ("test-fails-on-bright", {"error": error}) for error in FAILURES}})
    yield BUILT


# ----------------------------------------------------------------------------- item 6: per-file failures


@pytest.mark.parametrize("error", ["cuda", "memory"])  # the engine's own failures (a bug is not one)
def test_an_engine_failure_on_one_file_is_one_line_and_the_run_goes_on(tmp_path, capsys, loads, error):
    for name in ("a", "c", "e"):
        Image.fromarray(gradient_gray()).save(tmp_path / f"{name}.png")
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(tmp_path / "b_white.png")
    (tmp_path / "d_truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, out, err = _run(["colorize", str(tmp_path), "--model", f"fragile-{error}", "--device", "cpu",
                           "--batch-size", "4"], capsys)
    assert code == FAILED  # an engine failure and an unreadable file: different kinds
    errors = _errors(err)
    assert len(errors) == 2, err
    assert any("b_white.png" in line and "engine failed" in line for line in errors)
    assert any("d_truncated.png" in line for line in errors)
    assert "Traceback" not in err
    for name in ("a", "c", "e"):  # the others in the same batch, and the files after it, are done
        assert (tmp_path / f"{name}_color.png").is_file()
    assert not (tmp_path / "b_white_color.png").exists()
    summary = err.strip().splitlines()[-1]
    assert "3 of 5 image(s) colorized" in summary and "2 failed" in summary and "b_white.png" in summary


def test_render_size_has_an_upper_bound_checked_before_the_model_loads(tmp_path, capsys, loads):
    from core.pipeline import MAX_RENDER_SIZE

    calls = loads
    Image.fromarray(gradient_gray()).save(tmp_path / "a.png")
    code, _, err = _run(["colorize", str(tmp_path / "a.png"), "--model", "tiny", "--render-size", "16384"], capsys)
    assert code == USAGE and len(err.strip().splitlines()) == 1
    assert "--render-size" in err and str(MAX_RENDER_SIZE) in err and not calls
    code, _, err = _run(["colorize", str(tmp_path / "a.png"), "--model", "tiny", "--device", "cpu",
                         "--render-size", str(MAX_RENDER_SIZE)], capsys)
    assert code == 0, err
    from core.pipeline import Colorizer

    with pytest.raises(ValueError, match=str(MAX_RENDER_SIZE)):  # the Python API keeps the same bound
        Colorizer(TinyLogitsModel(), "cpu").colorize_array(gradient_gray(), render_size=MAX_RENDER_SIZE + 8)


# ----------------------------------------------------------------------------- item 7: output locations


def test_an_out_dir_that_cannot_be_created_is_one_line_before_the_model_loads(tmp_path, capsys, loads):
    calls = loads
    Image.fromarray(gradient_gray()).save(tmp_path / "a.png")
    (tmp_path / "plain_file").write_text("not a folder")
    for out_dir in (tmp_path / "plain_file" / "sub", tmp_path / "plain_file"):
        code, out, err = _run(["colorize", str(tmp_path / "a.png"), "--out-dir", str(out_dir), "--model", "tiny"],
                              capsys)
        assert code == OUTPUT and len(err.strip().splitlines()) == 1, err
        assert "--out-dir" in err and "Traceback" not in err
    assert not calls


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_out_dir_or_source_folder_is_one_line_before_the_model_loads(tmp_path, capsys, loads):
    calls = loads
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(gradient_gray()).save(source / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = _run(["colorize", str(source / "a.png"), "--out-dir", str(locked / "new"), "--model", "tiny"],
                            capsys)
        assert code == OUTPUT and "--out-dir" in err and len(err.strip().splitlines()) == 1
        code, _, err = _run(["colorize", str(source / "a.png"), "--out-dir", str(locked), "--model", "tiny"], capsys)
        assert code == OUTPUT and "not writable" in err
        source.chmod(0o500)
        code, _, err = _run(["colorize", str(source / "a.png"), "--model", "tiny"], capsys)
        assert code == OUTPUT and "not writable" in err and len(_errors(err)) == 1
    finally:
        locked.chmod(0o700)
        source.chmod(0o700)
    assert not calls


def test_an_output_that_is_a_folder_is_refused_even_with_overwrite(tmp_path, capsys, loads):
    Image.fromarray(gradient_gray()).save(tmp_path / "a.png")
    folder = tmp_path / "result.png"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, _, err = _run(["colorize", str(tmp_path / "a.png"), "-o", str(folder), "--overwrite", "--model", "tiny"],
                        capsys)
    assert code == OUTPUT and "is a folder" in err
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_hard_link_to_the_input_is_the_input(tmp_path, capsys, loads):
    source = tmp_path / "a.png"
    Image.fromarray(gradient_gray()).save(source)
    os.link(source, tmp_path / "a_color.png")
    code, _, err = _run(["colorize", str(source), "--overwrite", "--model", "tiny"], capsys)
    assert code == OUTPUT and "refusing to overwrite the input" in err


# ----------------------------------------------------------------------------- item 8: NaN / Inf


def test_nan_and_inf_in_float_input_are_handled_alike_by_api_reader_and_worker(tmp_path):
    import core
    from core.worker.engine import _pixels_3d

    clean = gradient_gray(dtype=np.float32)
    dirty = clean.copy()
    dirty[3, 5], dirty[10, 20], dirty[20, 30] = np.nan, np.inf, -np.inf
    expected = clean.copy()
    expected[3, 5], expected[10, 20], expected[20, 30] = 0.0, 1.0, 0.0

    model = TinyLogitsModel()
    out = core.colorize(dirty, model, device="cpu")
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, core.colorize(expected, model, device="cpu"))

    path = tmp_path / "float.tif"
    Image.fromarray(dirty, mode="F").save(path)
    np.testing.assert_array_equal(read_image(path).pixels[:, :, 0], expected)

    worker = _pixels_3d({"dtype": "f32", "shape": list(dirty.shape)}, memoryview(dirty.tobytes()))
    np.testing.assert_array_equal(worker[:, :, 0], expected)


# ----------------------------------------------------------------------------- item 9: decompression bombs, bands


def test_a_decompression_bomb_is_refused_in_one_line_naming_the_option(tmp_path, capsys, loads):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (11500, 11000)).save(bomb, optimize=False)  # 126.5 MP, about 120 KB
    assert bomb.stat().st_size < 1 << 20
    code, _, err = _run(["colorize", str(bomb), "--model", "tiny", "--device", "cpu"], capsys)
    assert code == INPUT
    errors = _errors(err)
    assert len(errors) == 1 and "bomb.png" in errors[0] and "--max-megapixels" in errors[0]
    assert "DecompressionBombWarning" not in err and "Traceback" not in err
    assert not (tmp_path / "bomb_color.png").exists()


@pytest.mark.parametrize("kind", ["gray8", "rgba16", "float", "post_mask_colorize"])
def test_banded_full_resolution_stages_equal_one_band(monkeypatch, kind):
    import core.geometry as geometry
    import core.pipeline as pipeline
    from core.pixel_tensors import luminance_from_pixels
    from core.pixels import split_alpha

    rng = np.random.default_rng(7)
    opts: dict = {}
    if kind == "gray8":
        pixels = gradient_gray(61, 83)
    elif kind == "rgba16":
        pixels = rng.integers(0, 65536, (61, 83, 4), dtype=np.uint16)
    elif kind == "float":
        pixels = gradient_gray(61, 83, np.float32)
    else:
        pixels = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
        mask = np.zeros((61, 83), np.float32)
        mask[:, 30:] = 1.0
        opts = {"post": ("tv",), "mask": mask, "mask_colorize": True}
    colorizer = pipeline.Colorizer(TinyLogitsModel(), "cpu")
    whole = colorizer.colorize_array(pixels, **opts)
    monkeypatch.setattr(geometry, "_FULL_RES_BAND_PIXELS", 83 * 7)  # bands of 7 rows, the last one partial
    banded = colorizer.colorize_array(pixels, **opts)
    if banded.dtype == np.float32:  # vectorised kernels round the tail of a row band differently: 1 ulp
        np.testing.assert_allclose(banded, whole, rtol=0, atol=3e-7)
    else:
        np.testing.assert_array_equal(banded, whole)
    L = luminance_from_pixels(split_alpha(pixels)[0])
    monkeypatch.setattr(geometry, "_FULL_RES_BAND_PIXELS", 1 << 30)
    ab_whole = colorizer.colorize_L(L)
    monkeypatch.setattr(geometry, "_FULL_RES_BAND_PIXELS", 83 * 5)
    assert torch.equal(colorizer.colorize_L(L), ab_whole)


_PEAK_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    from engine_stand_ins import TinyLogitsModel
    from core.pipeline import Colorizer
    height, width = int(sys.argv[2]), int(sys.argv[3])
    colorizer = Colorizer(TinyLogitsModel(), "cpu")
    colorizer.colorize_array(np.zeros((300, 400), np.uint8))  # warm-up: lazy initialisation, lookup tables
    pixels = np.add.outer(np.arange(height, dtype=np.uint16), np.arange(width, dtype=np.uint16)).astype(np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = colorizer.colorize_array(pixels)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_increase_mb": (after - before) / 1024, "output_mb": out.nbytes / 2**20}))
""")


def test_peak_memory_of_a_large_image_stays_bounded():
    """24 MP 8-bit gray: unbanded, the float32 L, ab and upsampling temporaries took about 1 GB
    beyond the input; banded, the increase is the 8-bit output plus a few bands."""
    result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(Path(__file__).parents[1]), "4000", "6000"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert numbers["peak_increase_mb"] < numbers["output_mb"] + 150, numbers


# ----------------------------------------------------------------------------- item 10: frames and pages


@pytest.mark.parametrize("suffix", [".gif", ".tif"])
def test_animations_and_multi_page_files_say_only_the_first_frame_is_colorized(tmp_path, capsys, loads, suffix):
    frames = [Image.fromarray(np.roll(gradient_gray(), 8 * i, axis=1)) for i in range(3)]
    source = tmp_path / f"anim{suffix}"
    frames[0].save(source, save_all=True, append_images=frames[1:])
    code, out, err = _run(["colorize", str(source), "--model", "tiny", "--device", "cpu", "--format", "png"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "3 frames" in warnings[0] and "only the first" in warnings[0]
    assert "warning" not in out
    assert (tmp_path / "anim_color.png").is_file()
    single = tmp_path / f"single{suffix}"
    frames[0].save(single)
    code, _, err = _run(["colorize", str(single), "--model", "tiny", "--device", "cpu", "--format", "png"], capsys)
    assert code == 0 and "warning" not in err
