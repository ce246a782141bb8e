"""The ``tinct`` frame and ``tinct colorize``: sub-commands, naming, refusals, bad files, atomicity."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from engine_stand_ins import gradient_gray
from core import cli
from core.errors import INPUT, MODEL, OUTPUT
from core.imageio import read_image

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _save_gray(path: Path, **kwargs) -> Path:
    Image.fromarray(gradient_gray()).save(path, **kwargs)
    return path


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_engine_help_lists_present_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    present = [m.__name__ for m in cli.contributing_modules()]
    assert "core.cli_colorize" in present and "core.bench" in present
    for command in ("colorize", "bench"):
        assert command in text
    if "weights_fetch.cli" in present:
        assert "weights" in text


def test_engine_tinct_entry_point_runs_in_a_fresh_process():
    result = subprocess.run([sys.executable, "-m", "core.cli", "colorize", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for option in ("--out-dir", "--render-size", "--post", "--mask-colorize", "--overwrite", "--format"):
        assert option in result.stdout


def test_engine_frame_skips_only_missing_modules(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "later", ("core.no_such_module_yet", "a command this installation lacks"))
    assert "core.no_such_module_yet" not in [m.__name__ for m in cli.contributing_modules()]
    error = ModuleNotFoundError("No module named 'some_dependency'", name="some_dependency")
    assert not cli._is_missing(error, "core.video.cli")
    assert cli._is_missing(ModuleNotFoundError(name="core.video"), "core.video.cli")
    code, _, err = _run(["later"], capsys)
    assert code == 2 and err.strip() == "tinct later: error: this installation does not include the 'later' command"


def test_engine_command_table_agrees_with_the_modules():
    """Each module registers exactly the commands COMMANDS gives it, with the same help lines."""
    import argparse

    by_module: dict[str, dict[str, str]] = {}
    for command, (module, help_line) in cli.COMMANDS.items():
        by_module.setdefault(module, {})[command] = help_line
    for module in cli.contributing_modules():
        subparsers = argparse.ArgumentParser().add_subparsers()
        module.add_parser(subparsers)
        registered = {action.dest: action.help for action in subparsers._choices_actions}
        assert registered == by_module[module.__name__], module.__name__
    assert {"core.cli_colorize", "core.bench", "core.video.cli", "core.post.cli"} <= {
        m.__name__ for m in cli.contributing_modules()}


def test_engine_help_and_each_command_import_only_their_own_module():
    """``tinct --help`` loads neither torch nor numpy; ``tinct CMD --help`` loads CMD's module and
    none of the measuring commands' (nor the training loop)."""
    modules = sorted({module for module, _ in cli.COMMANDS.values()})
    probe = (
        "import sys, core.cli as c\n"
        "try:\n    c.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"names = {['torch', 'numpy', 'cv2', 'core.training.loop', *modules]!r}\n"
        "print(' '.join(n for n in names if n in sys.modules), file=sys.stderr)\n"
    )

    def loaded(*argv: str) -> set[str]:
        done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return set(done.stderr.strip().splitlines()[-1].split()) if done.stderr.strip() else set()

    assert loaded("--help") == set()
    assert loaded("bench", "--help") == {"core.bench"}
    measuring = {"core.bench", "core.evaluate", "core.post.cli", "core.training.cli", "core.training.loop"}
    for command in ("bench-post", "eval-video", "colorize"):
        own = cli.COMMANDS[command][0]
        seen = loaded(command, "--help")
        assert own in seen and not (seen & measuring) - {own}


def test_engine_colorize_files_keeps_alpha_bits_and_icc(tmp_path, capsys, tiny_models):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    gray = _save_gray(tmp_path / "gray.jpg", quality=95)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([gradient_gray()] * 3 + [gradient_gray()[:, ::-1]])).save(rgba, icc_profile=icc)
    deep = tmp_path / "deep.png"
    Image.fromarray(gradient_gray(dtype=np.uint16)).save(deep)
    before = {p: p.read_bytes() for p in (gray, rgba, deep)}
    code, out, err = _run(["colorize", str(gray), str(rgba), str(deep), "--model", "tiny", "--device", "cpu"], capsys)
    assert code == 0, err
    assert {p: p.read_bytes() for p in before} == before  # inputs untouched
    assert read_image(tmp_path / "gray_color.jpg").pixels.shape == (48, 64, 3)
    colored = read_image(tmp_path / "rgba_color.png")
    assert colored.pixels.shape == (48, 64, 4) and colored.icc_profile == icc
    np.testing.assert_array_equal(colored.pixels[:, :, 3], gradient_gray()[:, ::-1])
    assert read_image(tmp_path / "deep_color.png").pixels.dtype == np.uint16
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_engine_bad_files_fail_alone_and_exit_nonzero(tmp_path, capsys, tiny_models, monkeypatch):
    good = _save_gray(tmp_path / "a_good.png")
    (tmp_path / "b_empty.png").write_bytes(b"")
    buffer = io.BytesIO()
    Image.fromarray(gradient_gray(64, 64)).save(buffer, format="JPEG")
    (tmp_path / "c_truncated.jpg").write_bytes(buffer.getvalue()[:300])
    big = tmp_path / "d_bomb.png"
    Image.fromarray(np.zeros((200, 200), np.uint8)).save(big)
    code, out, err = _run(["colorize", str(tmp_path), "--model", "tiny", "--device", "cpu",
                           "--max-megapixels", "0.03"], capsys)  # 200x200 = 0.04 MP: a "bomb"
    assert code == INPUT  # every failure an unreadable input
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 3
    assert any("b_empty.png" in line and "empty" in line for line in lines)
    assert any("c_truncated.jpg" in line and "truncated" in line for line in lines)
    assert any("d_bomb.png" in line and "bomb" in line and "--max-megapixels" in line for line in lines)
    assert (tmp_path / "a_good_color.png").is_file() and good.is_file()
    assert not (tmp_path / "b_empty_color.png").exists()


def test_engine_never_overwrites_inputs_and_respects_existing_outputs(tmp_path, capsys, tiny_models):
    source = _save_gray(tmp_path / "photo.png")
    original = source.read_bytes()
    code, _, err = _run(["colorize", str(source), "--suffix", "", "--model", "tiny", "--device", "cpu"], capsys)
    assert code == OUTPUT and "refusing to overwrite the input" in err
    code, _, err = _run(["colorize", str(source), "-o", str(source), "--model", "tiny", "--device", "cpu"], capsys)
    assert code == OUTPUT and source.read_bytes() == original
    target = tmp_path / "photo_color.png"
    target.write_bytes(b"keep me")
    code, _, err = _run(["colorize", str(source), "--model", "tiny", "--device", "cpu"], capsys)
    assert code == OUTPUT and "exists" in err and target.read_bytes() == b"keep me"
    code, _, err = _run(["colorize", str(source), "--overwrite", "--model", "tiny", "--device", "cpu"], capsys)
    assert code == 0, err
    assert read_image(target).pixels.shape == (48, 64, 3)


def test_engine_output_naming_options(tmp_path, capsys, tiny_models):
    folder = tmp_path / "in"
    folder.mkdir()
    _save_gray(folder / "one.png")
    _save_gray(folder / "two.tif")
    out_dir = tmp_path / "out"
    code, _, err = _run(["colorize", str(folder / "*.*"), "--out-dir", str(out_dir), "--format", "jpg",
                         "--suffix", "_c", "--model", "tiny", "--device", "cpu"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out_dir)) == ["one_c.jpg", "two_c.jpg"]
    code, _, err = _run(["colorize", str(folder), "-o", str(tmp_path / "x.png"), "--model", "tiny"], capsys)
    assert code == 2 and "single input" in err
    code, _, err = _run(["colorize", str(tmp_path / "nothing*.png"), "--model", "tiny"], capsys)
    assert code == INPUT and "no file matches" in err


def test_engine_jpeg_with_alpha_fails_cleanly(tmp_path, capsys, tiny_models):
    source = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([gradient_gray()] * 4)).save(source)
    code, _, err = _run(["colorize", str(source), "--format", "jpg", "--model", "tiny", "--device", "cpu"], capsys)
    assert code == OUTPUT and "alpha" in err
    assert sorted(os.listdir(tmp_path)) == ["rgba.png"]


def test_engine_missing_weights_print_how_to(tmp_path, capsys, tiny_models):
    source = _save_gray(tmp_path / "photo.png")
    code, _, err = _run(["colorize", str(source), "--model", "missing", "--device", "cpu"], capsys)
    assert code == MODEL and "tinct weights fetch missing" in err
    assert len(err.strip().splitlines()) == 1


def test_engine_mask_option(tmp_path, capsys, tiny_models):
    source = tmp_path / "photo.png"
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(source)
    mask = np.zeros((48, 64), np.uint8)
    mask[:, 40:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    code, _, err = _run(["colorize", str(source), "--mask", str(tmp_path / "mask.png"), "--mask-colorize",
                         "--model", "tiny", "--device", "cpu"], capsys)
    assert code == 0, err
    out = read_image(tmp_path / "photo_color.png").pixels
    np.testing.assert_array_equal(out[:, :40], rgb[:, :40])
    code, _, err = _run(["colorize", str(source), "--mask-colorize", "--model", "tiny"], capsys)
    assert code == 2 and "--mask" in err
