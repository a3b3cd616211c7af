"""Train and evaluate a long-tail image classifier with any per-sample loss and core aggregate.

    python -m stk_nmt.vision.train --save-dir runs/digits-stk                      # offline default
    python -m stk_nmt.vision.train --dataset cifar100-lt --data-dir data/ --imb-factor 100 \
        --loss ce --aggregate stk --k-ratio 0.9 --epochs 200 --save-dir runs/c100-stk

SGD with momentum and a per-step cosine schedule (optional linear warm-up); ST_k's lam sits in
its own parameter group without weight decay. A run resumes from <save-dir>/checkpoint_last.pt
when it exists (every epoch writes it atomically), and only with the settings it was started with
(RESUME_KEYS; --reset starts over). One run at a time per save dir. Writes <save-dir>/metrics.json
(overall, many/medium/few-shot top-1/top-5, per-class accuracy, training history) and
<save-dir>/per_class_accuracy.png.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from stk_nmt.core import AGGREGATES, defaults, get_aggregate
from stk_nmt.core.aggregates.settings import check_aggregate_settings
from stk_nmt.files import atomic_write, lock_folder, write_json
from stk_nmt.seeding import seed_everything

from ..cli import prog_name
from .criterion import LongTailCriterion
from .data import DATASETS, DEFAULT_MODEL, build_datasets
from .losses import COSINE_LOSSES, LOSSES
from .metrics import evaluate
from .models import MODELS, build_model
from .plots import plot_per_class_accuracy

# How this CLI spells the aggregate settings, for the core's check (core/aggregates/settings.py).
VISION_FLAGS = {"stk_aggregate": "--aggregate", "stk_k": "--k", "stk_k_ratio": "--k-ratio", "stk_delta": "--delta",
                "stk_lam_init": "--lam-init", "stk_lam_lr": "--lam-lr"}
CHECKPOINT = "checkpoint_last.pt"
METRICS = "metrics.json"
PLOT = "per_class_accuracy.png"
# Arguments that must match when a run resumes from a checkpoint: everything that shapes the model
# (data, model, loss, aggregate, optimiser, the schedule's length), not where it stops (--stop-after)
# or how it shows progress.
RESUME_KEYS = ("dataset", "imb_factor", "data_seed", "image_size", "model", "classifier", "loss", "tau", "max_m",
               "scale", "topk", "epsilon", "n_samples", "aggregate", "k_ratio", "k", "delta", "lam_init",
               "batch_size", "epochs", "lr", "lam_lr", "momentum", "weight_decay", "warmup_epochs", "seed")


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def non_negative(kind):
    def parse(text):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value
    return parse


class RenamedFlag(argparse.Action):
    """`store` for a flag whose first option string is its name and the others old spellings: an old
    spelling sets the same value and prints a warning naming the new flag.

    Hand-written because argparse has no deprecated alias: Python 3.13's `deprecated=True` marks a
    whole option, every spelling of it, and the project supports 3.11 and 3.12."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string is not None and option_string != self.option_strings[0]:
            print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.option_strings[0]} "
                  f"(the fairseq criteria's name)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("stk_nmt.vision.train"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=DATASETS, default="digits-lt")
    d.add_argument("--data-dir", help="CIFAR: folder with the python archive or its extracted folder; "
                   "ImageNet-LT / Places-LT: the image root")
    d.add_argument("--split-dir", help="folder of the OLTR split files (default: --data-dir)")
    d.add_argument("--imb-factor", type=float, default=100.0, help="imbalance factor IF > 1 (digits, CIFAR)")
    d.add_argument("--data-seed", type=int, default=0, help="numpy seed of the long-tail selection (0 = LDAM-DRW)")
    d.add_argument("--image-size", type=positive(int), default=224, help="crop size for ImageNet-LT / Places-LT")
    d.add_argument("--num-workers", type=non_negative(int), default=0)
    m = p.add_argument_group("model and loss")
    m.add_argument("--model", help=f"one of {MODELS}; default depends on the dataset {DEFAULT_MODEL}")
    m.add_argument("--classifier", choices=("auto", "linear", "cosine"), default="auto",
                   help=f"last layer; auto = cosine for {COSINE_LOSSES}, linear otherwise")
    m.add_argument("--loss", choices=LOSSES, default="ce", help="per-sample loss")
    m.add_argument("--tau", type=float, default=defaults.LOGIT_ADJUSTED_TAU,
                   help="logit-adjusted loss: temperature of the log prior")
    m.add_argument("--max-m", type=positive(float),
                   help=f"largest class margin: LDAM (default {defaults.LDAM_MAX_M}), imbalanced top-K hinge "
                   f"(default {defaults.IMBALANCED_MAX_M})")
    m.add_argument("--scale", type=positive(float),
                   help=f"logit scale: LDAM (default {defaults.LDAM_SCALE:g}), imbalanced top-K hinge "
                   f"(default {defaults.IMBALANCED_SCALE:g}, for the cosine classifier)")
    # The fairseq criteria's spellings; the old ones (--topk, --epsilon, --n-samples) still work and warn.
    m.add_argument("--topk-k", "--topk", dest="topk", action=RenamedFlag, type=positive(int), default=defaults.TOPK_K,
                   help="top-K hinge losses: the K of the top-K metric")
    m.add_argument("--topk-eps", "--epsilon", dest="epsilon", action=RenamedFlag, type=positive(float),
                   help=f"top-K hinge noise level (default {defaults.TOPK_EPSILON} balanced, "
                   f"{defaults.IMBALANCED_EPSILON} imbalanced: pytopk's operator default and the paper's imbalanced "
                   f"setting; its CIFAR-100 balanced runs used 0.2)")
    m.add_argument("--topk-samples", "--n-samples", dest="n_samples", action=RenamedFlag, type=positive(int),
                   default=defaults.TOPK_SAMPLES, help="top-K hinge: noise draws S")
    # AGGREGATES is the registry's live view: an aggregate registered before the parser reads the
    # command line is accepted, and --help lists it.
    m.add_argument("--aggregate", choices=AGGREGATES, default="stk", help="how the batch's per-sample losses combine")
    m.add_argument("--k-ratio", type=float, default=defaults.K_RATIO["vision"], help="k as a fraction of the batch (atk, matk, stk)")
    m.add_argument("--k", type=positive(int), help="k as a count (replaces --k-ratio)")
    m.add_argument("--delta", type=positive(float), default=0.01, help="SReLU smoothing of ST_k")
    m.add_argument("--lam-init", type=float, help="initial lam (default: the first batch's k-th largest loss)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=positive(int), default=30)
    o.add_argument("--batch-size", type=positive(int), default=64)
    o.add_argument("--lr", type=positive(float), default=0.05)
    o.add_argument("--lam-lr", type=positive(float), help="learning rate of lam (default: --lr)")
    o.add_argument("--momentum", type=non_negative(float), default=0.9)
    o.add_argument("--weight-decay", type=non_negative(float), default=5e-4)
    o.add_argument("--warmup-epochs", type=non_negative(int), default=0)
    o.add_argument("--stop-after", type=positive(int), help="stop (and evaluate) after this many epochs; "
                   "the schedule still spans --epochs, and running again resumes: for time-limited jobs")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=1, help="seed of initialisation, shuffling and augmentation")
    r.add_argument("--save-dir", required=True, help="checkpoint, metrics.json and the plot go here")
    r.add_argument("--reset", action="store_true", help="ignore an existing checkpoint and start over")
    r.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    r.add_argument("--no-plot", action="store_true")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed per epoch: shuffling and augmentation depend only on (seed, epoch), so resuming is exact."""
    return (seed * 1_000_003 + epoch) % 2**63


def cosine_with_warmup(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def atomic_torch_save(obj, path: str) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp), suffix=".pt")


def load_checkpoint(path: str, args, model, criterion, optimizer, scheduler):
    return restore(read_checkpoint(path, args), model, criterion, optimizer, scheduler)


def read_checkpoint(path: str, args) -> dict:
    """The checkpoint's state, after checking that args match the settings it was trained with."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"cannot resume from {path}: the file is unreadable ({error}), e.g. cut short "
                         f"by a full disk or a copy; delete it or pass --reset to start over") from None
    saved = state["args"]
    # A key a checkpoint of an older version lacks was then fixed at today's default.
    defaults = vars(build_parser().parse_args(["--save-dir", "-"]))
    changed = {k: (saved.get(k, defaults[k]), getattr(args, k)) for k in RESUME_KEYS
               if saved.get(k, defaults[k]) != getattr(args, k)}
    if changed:
        detail = ", ".join(f"{k}: checkpoint {old!r} vs now {new!r}" for k, (old, new) in changed.items())
        raise ValueError(f"cannot resume from {path}: the run's settings differ ({detail}); pass --reset to start over")
    return state


def restore(state: dict, model, criterion, optimizer, scheduler):
    model.load_state_dict(state["model"])
    criterion.load_state_dict(state["criterion"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["epoch"], state["history"]


# The progress bar reads the running mean loss (and lam) back from the device every LOG_EVERY
# batches, not every batch: each read makes the host wait for the device.
LOG_EVERY = 20


def train_one_epoch(model, criterion, optimizer, scheduler, loader, device, desc, show_progress) -> torch.Tensor:
    """One epoch; returns the mean training loss as a 0-dim tensor on `device` (read it once)."""
    model.train()
    total, batches = torch.zeros((), device=device), 0  # summed on the device
    bar = tqdm(loader, desc=desc, leave=False, disable=not show_progress, file=sys.stderr)
    for images, labels in bar:
        images, labels = images.to(device), labels.to(device)
        loss = criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total, batches = total + loss.detach().float(), batches + 1
        if show_progress and batches % LOG_EVERY == 0:
            postfix = {"loss": f"{float(total) / batches:.4f}", "lr": f"{scheduler.get_last_lr()[0]:.4g}"}
            if criterion.lam is not None:
                postfix["lam"] = f"{criterion.lam:.4f}"
            bar.set_postfix(postfix)
    return total / max(1, batches)


def main(argv: Optional[List[str]] = None) -> dict:
    args = build_parser().parse_args(argv)
    # The core's one check of the aggregate settings, naming this CLI's flags (--k replaces --k-ratio).
    check_aggregate_settings({"stk_aggregate": args.aggregate, "stk_k": args.k,
                              "stk_k_ratio": args.k_ratio if args.k is None else None, "stk_delta": args.delta,
                              "stk_lam_init": args.lam_init,
                              **({} if args.lam_lr is None else {"stk_lam_lr": args.lam_lr})}, VISION_FLAGS)
    if args.k is not None and get_aggregate(args.aggregate).uses_k and args.k > args.batch_size:
        raise ValueError(f"--k {args.k} cannot fit: a batch holds at most --batch-size {args.batch_size} samples; "
                         f"lower --k or give --k-ratio")
    args.model = args.model or DEFAULT_MODEL[args.dataset]
    # Released by the kernel when this process ends, however it ends; kept for the whole run.
    lock = lock_folder(args.save_dir, "vision training")
    try:
        # Under the lock no writer runs: a temporary of atomic_torch_save is a killed run's leftover.
        for stale in Path(args.save_dir).glob(f".{CHECKPOINT}.*.pt"):
            stale.unlink()
            print(f"removed {stale.name}, a checkpoint temporary a killed run left behind", file=sys.stderr)
        return _train(args)
    finally:
        os.close(lock)


def _train(args) -> dict:
    device = torch.device(args.device)
    seed_everything(args.seed)
    print(f"seed {args.seed} (data seed {args.data_seed}); device {device}", file=sys.stderr)
    checkpoint_path = os.path.join(args.save_dir, CHECKPOINT)
    # Checked before the data is loaded: a refused resume costs nothing.
    state = read_checkpoint(checkpoint_path, args) if os.path.exists(checkpoint_path) and not args.reset else None

    train_set, test_set = build_datasets(args.dataset, args.data_dir, args.split_dir, args.imb_factor, args.data_seed, args.image_size)
    counts = train_set.class_counts
    print(f"{args.dataset}: {len(train_set)} training images in {len(counts)} classes "
          f"(largest {max(counts)}, smallest {min(counts)}), {len(test_set)} test images", file=sys.stderr)

    cosine = args.classifier == "cosine" or (args.classifier == "auto" and args.loss in COSINE_LOSSES)
    model = build_model(args.model, train_set.num_classes, train_set.image_shape, normed=cosine).to(device)
    criterion = LongTailCriterion(
        args.loss, aggregate=args.aggregate, k=args.k, k_ratio=args.k_ratio, delta=args.delta, lam_init=args.lam_init,
        class_counts=counts, **loss_options(args),
    ).to(device)
    optimizer = torch.optim.SGD(
        [{"params": model.parameters()}, *criterion.param_groups(lr=args.lam_lr)],
        lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
    )
    generator = torch.Generator()
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, generator=generator, num_workers=args.num_workers)
    test_loader = DataLoader(test_set, max(args.batch_size, 256), shuffle=False, num_workers=args.num_workers)
    steps_per_epoch = len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(args.epochs * steps_per_epoch, args.warmup_epochs * steps_per_epoch)
    )

    start_epoch, history = 0, []
    if state is not None:
        start_epoch, history = restore(state, model, criterion, optimizer, scheduler)
        print(f"resuming from {checkpoint_path} after epoch {start_epoch}", file=sys.stderr)

    show = not args.no_progress
    stop = args.epochs if args.stop_after is None else min(args.epochs, args.stop_after)
    for epoch in tqdm(range(start_epoch, stop), desc="epochs", disable=not show, file=sys.stderr,
                      initial=start_epoch, total=args.epochs):
        seed = epoch_seed(args.seed, epoch)
        generator.manual_seed(seed)
        torch.manual_seed(seed)
        started = time.time()
        loss = float(train_one_epoch(model, criterion, optimizer, scheduler, train_loader, device, f"epoch {epoch + 1}",
                                     show))
        # k_clipped: batches (so far) smaller than --k, which used k = n (the last partial batch).
        history.append({"epoch": epoch + 1, "train_loss": loss, "lam": criterion.lam, "k_clipped": criterion.k_clipped,
                        "lr": scheduler.get_last_lr()[0], "seconds": round(time.time() - started, 3)})
        atomic_torch_save({"args": vars(args), "epoch": epoch + 1, "history": history, "model": model.state_dict(),
                           "criterion": criterion.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict()}, checkpoint_path)

    metrics = evaluate(model, test_loader, counts, device)
    metrics.update({"dataset": args.dataset, "epochs_done": len(history), "lam": criterion.lam, "history": history,
                    "args": vars(args)})
    write_json(os.path.join(args.save_dir, METRICS), metrics, indent=1)
    if not args.no_plot:
        label = f"{args.loss} + {args.aggregate}"
        plot_per_class_accuracy({label: metrics}, os.path.join(args.save_dir, PLOT), title=f"{args.dataset}, IF {args.imb_factor:g}")
    print(summary_line(metrics))
    return metrics


def loss_options(args) -> dict:
    """The options of args.loss; an unset flag that serves two losses (None) takes the loss's own
    default in build_loss (core/defaults.py)."""
    if args.loss == "logit-adjusted":
        return {"tau": args.tau}
    if args.loss == "ldam":
        return {"max_m": args.max_m, "scale": args.scale}
    if args.loss == "topk-hinge":
        return {"topk": args.topk, "epsilon": args.epsilon, "n_samples": args.n_samples}
    if args.loss == "topk-hinge-imbalanced":
        return {"topk": args.topk, "epsilon": args.epsilon, "n_samples": args.n_samples,
                "max_m": args.max_m, "scale": args.scale}
    return {}


def fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_line(m: dict) -> str:
    return (f"top-1 {fmt(m['top1'])}  top-5 {fmt(m['top5'])}  many {fmt(m['many_top1'])}  "
            f"medium {fmt(m['medium_top1'])}  few {fmt(m['few_top1'])}")


if __name__ == "__main__":
    main()
