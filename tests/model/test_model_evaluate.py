"""``tinct eval``: evaluation sets, the new metrics per set, the worst-images grid, on small generated data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import lab2rgb

from core import cli
from core.errors import USAGE, UsageError
from core.evaluate import (
    EVAL_SETS,
    ILLUMINATED_LIST,
    TILE_HEIGHT,
    WORST_COUNT,
    WorstImages,
    evaluate,
    parse_sets,
    set_files,
)

ILLUMINATED = [ln for ln in ILLUMINATED_LIST.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _lab_image(path: Path, lab: tuple[float, float, float], size=(24, 32), seed=0) -> None:
    rng = np.random.default_rng(seed)
    arr = np.empty((*size, 3))
    arr[...] = lab
    arr[..., 0] += rng.uniform(-10, 10, size)  # some structure for the network
    rgb = (np.clip(lab2rgb(arr), 0, 1) * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A miniature ``shared/data`` with photos and documents validation lists (and a grayscale photo)."""
    data = tmp_path / "shared" / "data"
    photos = ["sea/a.png", "sea/b.png", "forest/c.png", "gray/d.png"]
    for i, rel in enumerate(photos[:3]):
        _lab_image(data / "photos" / rel, (60.0, -20.0 + 10 * i, -30.0), seed=i)
    (data / "photos" / "gray").mkdir()
    Image.fromarray(np.full((24, 32), 90, np.uint8)).save(data / "photos" / "gray" / "d.png")
    (data / "photos" / "VALIDATION.txt").write_text("# fixed split\n" + "\n".join(photos) + "\n")
    docs = ["letters/w1.png", "letters/w2.png", ILLUMINATED[0], ILLUMINATED[-1]]
    for i, rel in enumerate(docs):
        _lab_image(data / "documents" / rel, (85.0, 1.0, 12.0 + i), seed=10 + i)
    (data / "documents" / "VALIDATION.txt").write_text("\n".join(docs) + "\n")
    monkeypatch.setenv("TINCT_SHARED", str(tmp_path / "shared"))
    return data


def test_sets_split_documents_by_the_committed_list(shared):
    assert [p.relative_to(shared).as_posix() for p in set_files("photos")][:2] == ["photos/sea/a.png", "photos/sea/b.png"]
    written = set_files("documents-written")
    illuminated = set_files("documents-illuminated")
    assert [p.name for p in written] == ["w1.png", "w2.png"]
    assert [p.relative_to(shared / "documents").as_posix() for p in illuminated] == [ILLUMINATED[0], ILLUMINATED[-1]]
    assert len(set_files("v1")) == 200  # the unchanged first validation split
    assert parse_sets("all") == list(EVAL_SETS)
    assert parse_sets("photos, v1") == ["photos", "v1"]
    with pytest.raises(UsageError, match="unknown evaluation set 'nope'"):
        parse_sets("photos,nope")


class ConstantColour:
    """Colours every pixel with one ab (a confident guess), to check the metrics end to end."""

    def __init__(self, ab):
        self.ab = torch.tensor(ab, dtype=torch.float32).view(1, 2, 1, 1)

    def colorize_L(self, L, **_):
        return self.ab.expand(L.shape[0], 2, *L.shape[-2:]).clone()


def test_wrong_vivid_and_cast_per_set(shared):
    files = set_files("photos")
    report = evaluate(files, ["blue", "truthy"], colorizers={"blue": ConstantColour((0.0, -60.0)),
                                                             "truthy": ConstantColour((-10.0, -30.0))}, progress=False)
    assert report["images"] == 3 and report["skipped_gray"] == ["d.png"]
    blue, truthy, gray = report["models"]["blue"], report["models"]["truthy"], report["models"]["gray"]
    # truth ab is about (-20..0, -30): "blue" (0, -60) is ~30-36 away everywhere and vivid -> mostly wrong-vivid
    assert blue["wrong_vivid"] > 50
    assert truthy["wrong_vivid"] == 0  # within 10 ab of the truth
    assert gray["wrong_vivid"] == 0  # gray is never vivid
    # mean cast: output minus truth; gray's cast is minus the truth's mean ab
    assert blue["cast_b"] < -25 and abs(blue["cast_a"] - 10) < 3
    assert gray["cast_b"] > 25
    assert abs(truthy["per_page_cast"] - np.hypot(truthy["cast_a"], truthy["cast_b"])) < 10
    assert truthy["per_page_cast"] < blue["per_page_cast"]
    assert blue["colorfulness_ratio"] == pytest.approx(blue["colorfulness"] / report["ground_truth"]["colorfulness"])


def test_worst_images_keeps_the_most_wrong_vivid_first():
    worst = WorstImages("m", count=2)
    img = torch.zeros(3, 8, 8)
    for score, name in ((0.1, "a"), (0.5, "b"), (0.3, "c"), (0.05, "d")):
        worst.offer(score, name, [img, img, img])
    assert [(s, label) for s, label, _ in worst.rows()] == [(0.5, "b"), (0.3, "c")]
    assert worst.rows()[0][2][0].height == TILE_HEIGHT


def test_cli_reports_every_set_with_json_and_worst_grid(shared, tmp_path, capsys):
    out_json = tmp_path / "out" / "report.json"
    worst_png = tmp_path / "out" / "worst.png"
    rc = cli.main(["eval", "--sets", "photos,documents-written,documents-illuminated", "--models", "default",
                   "--json", str(out_json), "--grid-worst", "default", "--grid-worst-out", str(worst_png)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    for name in ("photos", "documents-written", "documents-illuminated"):
        assert f"{name}: " in printed
    assert "wrong-vivid (%)" in printed and "per-page cast" in printed
    report = json.loads(out_json.read_text())
    assert set(report["sets"]) == {"photos", "documents-written", "documents-illuminated"}
    for name, n in (("photos", 3), ("documents-written", 2), ("documents-illuminated", 2)):
        s = report["sets"][name]
        assert s["images"] == n
        for model in ("default", "gray"):
            assert set(s["models"][model]) >= {"auc", "psnr", "colorfulness", "colorfulness_ratio", "wrong_vivid",
                                               "cast_a", "cast_b", "per_page_cast"}
    with Image.open(worst_png) as grid:  # 7 colour images < 12: all of them, input | default | truth
        assert grid.height == 18 + min(7, WORST_COUNT) * (TILE_HEIGHT + 4 + 14)
    assert report["grid_worst"] == str(worst_png)


def test_cli_keeps_the_file_arguments_and_refuses_bad_options(shared, tmp_path, capsys):
    photo = shared / "photos" / "sea" / "a.png"
    assert cli.main(["eval", str(photo), "--limit", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 images, T = 0.38") and "| gray |" in printed and "| default |" in printed
    assert cli.main(["eval", "--sets", "photos,nope"]) == USAGE
    assert "unknown evaluation set 'nope'" in capsys.readouterr().err
    assert cli.main(["eval", "--sets", "photos", "--grid-worst", "other"]) == USAGE
    assert "not among --models" in capsys.readouterr().err
    assert cli.main(["eval", str(photo), "--sets", "photos"]) == USAGE
    assert "not both" in capsys.readouterr().err


def test_worst_grid_columns_are_input_a_b_truth(shared, tmp_path):
    from core.evaluate import save_worst_grid

    worst = WorstImages("blue")
    models = ["truthy", "blue"]
    evaluate(set_files("photos"), models, colorizers={"blue": ConstantColour((0.0, -60.0)),
                                                      "truthy": ConstantColour((-10.0, -30.0))},
             worst=worst, progress=False, label="photos")
    out = tmp_path / "worst.png"
    save_worst_grid(worst, models, out)
    tile_w = round(32 * TILE_HEIGHT / 24)
    with Image.open(out) as im:
        grid = np.asarray(im.convert("RGB")).astype(int)
    assert grid.shape[1] == 4 * tile_w + 3 * 4
    y = 18 + 14 + TILE_HEIGHT // 2  # middle of the first row's tiles
    col = lambda i: grid[y, i * (tile_w + 4) + tile_w // 2]  # noqa: E731
    gray_in, a, b = col(0), col(1), col(2)
    assert abs(gray_in[0] - gray_in[2]) < 6  # the input is gray
    assert a[2] - a[0] > 60  # "blue" (the worst model) comes right after the input
    assert abs(b[2] - a[2]) > 10 or abs(b[0] - a[0]) > 10  # then the other model
