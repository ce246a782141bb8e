import json

import numpy as np
import pytest
import torch

from core.errors import INPUT
from core.post.cli import main as post_cli_main
from core.post.measure import (
    ValImage,
    bench_post,
    boundary_leakage,
    evaluate_post,
    load_bsds_val,
    segment_homogeneity,
    synthetic_predictor,
    write_report,
)
from core.post.synthetic import gaussian_blur
from post_scenes import coarse_bins, two_region_scene


def _truth():
    L, ab = two_region_scene(32)
    segmentation = np.zeros((32, 32), dtype=np.int64)
    segmentation[:, 16:] = 1
    return L[0, 0].numpy(), ab[0].numpy(), segmentation


def test_homogeneity_is_zero_for_flat_segments_and_grows_with_blotches():
    _, ab, segmentation = _truth()
    assert segment_homogeneity(ab, segmentation) == pytest.approx(0.0, abs=1e-4)
    blotchy = ab.copy()
    blotchy[:, :8, :8] = 0.0
    assert segment_homogeneity(blotchy, segmentation) > 5.0


def test_leakage_is_zero_for_the_truth_and_positive_for_a_halo():
    _, ab, segmentation = _truth()
    assert boundary_leakage(ab, ab, segmentation) == 0.0
    halo = gaussian_blur(torch.from_numpy(ab)[None], 2.0)[0].numpy()
    assert boundary_leakage(halo, ab, segmentation) > 10.0


def test_evaluate_post_scores_every_combination_and_writes_the_report(tmp_path):
    L, ab, segmentation = _truth()
    L = np.kron(L, np.ones((2, 2), np.float32))
    ab = np.stack([np.kron(c, np.ones((2, 2), np.float32)) for c in ab])
    image = ValImage("1", L, ab, (np.kron(segmentation, np.ones((2, 2), np.int64)),))
    table, rows = evaluate_post([image], synthetic_predictor(coarse_bins()), keep_rgb=1)
    assert set(table) == {"raw", "crf", "segments", "tv", "crf+segments+tv", "ground truth", "_meta"}
    assert table["crf+segments+tv"]["homogeneity"] < table["raw"]["homogeneity"]
    assert 0.0 <= table["raw"]["auc"] <= 100.0 and "auc_drop" in table["tv"]
    assert len(rows) == 1 and len(rows[0][1]) == 7 and rows[0][1][0].shape == (64, 64, 3)
    written = write_report(table, rows, tmp_path / "out", "test")
    assert [p.name for p in written] == ["post_eval.md", "post_eval.json", "post_grid.png"]
    assert json.loads(written[1].read_text())["raw"]["homogeneity"] == table["raw"]["homogeneity"]
    assert "| crf+segments+tv |" in written[0].read_text()
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_bench_post_times_each_combination():
    results = bench_post(size=(16, 16), num_bins=50, repeats=1)
    assert set(results) == {"raw", "crf", "segments", "tv", "crf+segments+tv"}
    assert all(seconds > 0 for seconds in results.values())


def _write_bsds_like(root, names=("12003", "3096"), size=(40, 56)) -> None:
    """A tiny data folder in BSDS500's layout: val JPEGs and groundTruth .mat files holding a
    MATLAB cell array of structs with a ``Segmentation`` field (four human segmentations each)."""
    from PIL import Image
    from scipy.io import savemat

    (root / "bsds500" / "val").mkdir(parents=True)
    (root / "bsds500" / "groundTruth" / "val").mkdir(parents=True)
    rng = np.random.default_rng(0)
    h, w = size
    for name in names:
        rgb = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(rgb).save(root / "bsds500" / "val" / f"{name}.jpg", quality=95)
        cell = np.empty((1, 4), dtype=object)
        for k in range(4):
            segmentation = np.ones((h, w), dtype=np.uint16)
            segmentation[:, w * (k + 1) // 5 :] = 2
            cell[0, k] = {"Segmentation": segmentation, "Boundaries": np.zeros((h, w), dtype=bool)}
        savemat(root / "bsds500" / "groundTruth" / "val" / f"{name}.mat", {"groundTruth": cell})


def test_load_bsds_val_reads_images_and_segmentations(tmp_path):
    _write_bsds_like(tmp_path)
    images = load_bsds_val(tmp_path, limit=1)
    assert [image.name for image in images] == ["12003"]  # sorted by name, limited
    (image,) = images
    h, w = image.L.shape
    assert (h, w) == (40, 56)
    assert image.ab.shape == (2, h, w) and 0 <= image.L.min() and image.L.max() <= 100
    assert np.abs(image.ab).max() > 20  # the colour of the JPEG, in ab units
    assert len(image.segmentations) == 4 and image.segmentations[0].shape == (h, w)
    assert set(np.unique(image.segmentations[1])) == {1, 2}
    assert len(load_bsds_val(tmp_path)) == 2


def test_eval_post_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert post_cli_main(["eval-post", "--synthetic", "--data", str(tmp_path), "--out", str(tmp_path)]) == INPUT
    assert "no BSDS500 ground truth" in capsys.readouterr().err
    assert post_cli_main(["eval-post", "--synthetic", "--post-strength", "2", "--data", str(tmp_path)]) == 2
    assert post_cli_main(["eval-post", "--synthetic", "--steps", "crf,foo", "--data", str(tmp_path)]) == 2
