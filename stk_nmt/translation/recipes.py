"""Training recipes: fairseq-train command lines for IWSLT14, WMT17 and the small demo model.

    python -m stk_nmt.translation.recipes --recipe iwslt14 --data data/iwslt14.de-en \
        --save-dir checkpoints/iwslt14-stk --criterion stk [--dry-run] [-- more fairseq-train args]

Any criterion fairseq knows (built-in or registered by --user-dir stk_nmt) can be given; the ones
below get their customary settings: label smoothing 0.1 for the label-smoothed losses (stk
included) and the paper's STk settings (k/n = 0.96 over target tokens, delta = 0.01) for stk and
the top-K hinge criteria (topk_hinge, imbalanced_topk_hinge), changeable with --stk-k-ratio /
--stk-delta; their other flags go after --, and a flag given there replaces the recipe's own and any
it conflicts with (`-- --stk-k 500` drops the default --stk-k-ratio). Training resumes from
SAVE_DIR/checkpoint_last.pt when it exists (from the newest readable checkpoint when that file is
unreadable, which is then renamed checkpoint_last.pt.unreadable). A run that starts from scratch
records its data and flags in SAVE_DIR/training-data.json; a resume with other data or other flags
(--max-epoch, --max-update and logging flags aside) is refused unless --resume-with-changes is given
(other dictionaries are always refused), and never rewrites that record. One run at a time per save
dir: a second is refused; temporaries a killed run left behind are removed. fairseq-train never
outlives this command; SAVE_DIR/train.log grows as it trains (a resumed run appends).
With --average-last N the last N checkpoints are averaged into checkpoint_avgN.pt afterwards.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..files import lock_folder, read_json, write_json
from .averaging import average_checkpoints, last_checkpoints
from .resume import remove_checkpoint_temporaries, resume_checkpoint
from .training_record import TRAINING_DATA_RECORD, record_training_data, resume_changes, training_record
from .fairseq_run import (USER_DIR, add_fairseq_train_args, fairseq_command, fairseq_train_args, language_args,
                          progress_line, run_fairseq)

ADAM = ["--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--clip-norm", "0.0",
        "--lr-scheduler", "inverse_sqrt"]


def small_transformer(dim: int, ffn: int) -> tuple:
    """A 2+2-layer, 4-head transformer with shared embeddings and the CPU recipes' Adam schedule
    (the demo's and the study's models differ in width only)."""
    return ("--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
            "--encoder-embed-dim", str(dim), "--decoder-embed-dim", str(dim), "--encoder-ffn-embed-dim", str(ffn),
            "--decoder-ffn-embed-dim", str(ffn), "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
            "--share-all-embeddings", *ADAM, "--lr", "2e-3", "--warmup-updates", "200", "--dropout", "0.1",
            "--weight-decay", "0.0")


@dataclass(frozen=True)
class Recipe:
    description: str
    args: tuple[str, ...]
    average_last: int = 0


RECIPES = {
    # fairseq's examples/translation IWSLT14 de-en recipe.
    "iwslt14": Recipe(
        "transformer_iwslt_de_en (6+6 layers, 512/1024, 4 heads), fairseq's IWSLT14 recipe",
        ("--arch", "transformer_iwslt_de_en", "--share-decoder-input-output-embed", *ADAM,
         "--lr", "5e-4", "--warmup-updates", "4000", "--dropout", "0.3", "--weight-decay", "0.0001",
         "--max-tokens", "4096", "--max-epoch", "60", "--keep-last-epochs", "10")),
    # Transformer big as in the STk paper's WMT17 setting (OpenNMT-py's WMT17 en-de example):
    # 6+6 layers, 1024/4096, 16 heads, 50k updates; the last 5 interval checkpoints averaged.
    "wmt17": Recipe(
        "transformer_vaswani_wmt_en_de_big (6+6 layers, 1024/4096, 16 heads), 50k updates",
        ("--arch", "transformer_vaswani_wmt_en_de_big", "--share-all-embeddings", *ADAM,
         "--lr", "7e-4", "--warmup-updates", "4000", "--warmup-init-lr", "1e-07", "--dropout", "0.3",
         "--weight-decay", "0.0", "--max-tokens", "4096", "--update-freq", "8", "--max-update", "50000",
         "--save-interval-updates", "1000", "--keep-interval-updates", "5", "--no-epoch-checkpoints"),
        average_last=5),
    # A small transformer that learns the embedded default corpus in minutes on 2 CPU cores.
    "demo": Recipe(
        "small transformer (2+2 layers, 128/256, 4 heads) for the default corpus on a CPU",
        (*small_transformer(128, 256), "--max-tokens", "2048", "--max-epoch", "12", "--no-epoch-checkpoints")),
    # The study's model for the ~40k-pair catalog corpora on a CPU (stk_nmt.translation.study --preset):
    # validation (the curve) and a resumable checkpoint every 200 updates, none at epoch ends.
    "study": Recipe(
        "small transformer (2+2 layers, 256/1024, 4 heads), 4,096-token batches, validated every 200 updates",
        (*small_transformer(256, 1024), "--max-tokens", "4096", "--max-epoch", "100", "--no-epoch-checkpoints",
         "--validate-interval", "1000", "--save-interval", "1000", "--validate-interval-updates", "200",
         "--save-interval-updates", "200", "--keep-interval-updates", "1", "--num-workers", "0")),
}

LABEL_SMOOTHED = {"label_smoothed_cross_entropy"}
STK_CRITERIA = {"stk", "stk_label_smoothed_cross_entropy"}
# The smoothed top-K hinge criteria share the aggregation flags (ST_k over tokens by default).
HINGE_CRITERIA = {"topk_hinge", "imbalanced_topk_hinge"}
STK_DEFAULTS = {"k_ratio": 0.96, "delta": 0.01}
# A recipe default is dropped when the user gives the flag itself or one it conflicts with.
CONFLICTING_FLAGS = {"--stk-k-ratio": ("--stk-k",), "--stk-k": ("--stk-k-ratio",)}


def criterion_args(criterion: str, label_smoothing: float = 0.1, stk_k_ratio: float = STK_DEFAULTS["k_ratio"],
                   stk_delta: float = STK_DEFAULTS["delta"]) -> list[str]:
    """The criterion's flags with the customary settings."""
    args = ["--criterion", criterion]
    if criterion in LABEL_SMOOTHED:
        args += ["--label-smoothing", str(label_smoothing)]
    elif criterion in STK_CRITERIA:
        args += ["--label-smoothing", str(label_smoothing), "--stk-k-ratio", str(stk_k_ratio),
                 "--stk-delta", str(stk_delta)]
    elif criterion in HINGE_CRITERIA:
        args += ["--stk-k-ratio", str(stk_k_ratio), "--stk-delta", str(stk_delta)]
        if criterion == "imbalanced_topk_hinge":
            args += ["--topk-scale", "1"]  # the decoder's logits are plain (the flag's default assumes cosine ones)
    return args


def without_overridden(defaults: list[str], user_args: Sequence[str]) -> list[str]:
    """defaults (`--flag value` pairs and bare `--flag`s) less each flag the user gives in
    user_args, or that conflicts with one the user gives (CONFLICTING_FLAGS)."""
    given = {word.partition("=")[0] for word in user_args if word.startswith("--")}
    kept, i = [], 0
    while i < len(defaults):
        flag = defaults[i]
        has_value = i + 1 < len(defaults) and not defaults[i + 1].startswith("--")
        if flag in given or any(other in given for other in CONFLICTING_FLAGS.get(flag, ())):
            i += 2 if has_value else 1
            continue
        kept.append(flag)
        i += 1
    return kept


def resolve_data_bin(data: Path) -> Path:
    """A prepared directory (with data-bin/ inside) or a fairseq data-bin itself."""
    data = Path(data)
    if (data / "data-bin").is_dir():
        return data / "data-bin"
    if data.is_dir() and any(data.glob("dict.*.txt")):
        return data
    raise FileNotFoundError(f"no fairseq data-bin in {data}: run a prepare script first")


def train_command(recipe: str, data: Path, save_dir: Path, criterion: str, seed: int = 1,
                  extra_args: Sequence[str] = (), **criterion_kwargs) -> list[str]:
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    data_bin = resolve_data_bin(data)
    # The criterion's settings are defaults: a flag after -- replaces them (the criterion refuses
    # --stk-k next to --stk-k-ratio, so the recipe must not add the one the user did not ask for).
    settings = without_overridden(criterion_args(criterion, **criterion_kwargs)[2:], extra_args)
    return [str(data_bin), *language_args(data_bin), "--user-dir", USER_DIR, *RECIPES[recipe].args,
            "--criterion", criterion, *settings, "--save-dir", str(save_dir),
            "--seed", str(seed), "--log-format", "simple", "--log-interval", "50", *extra_args]


def resume_args(save_dir: Path) -> tuple[list[str], Path | None]:
    """fairseq-train flags to resume from the newest readable checkpoint, saying which and why, and
    that checkpoint (None: training starts from scratch).

    An unreadable checkpoint_last.pt (a kill while an older fairseq copied it) is renamed
    checkpoint_last.pt.unreadable so that fairseq neither loads nor keeps it."""
    last = Path(save_dir) / "checkpoint_last.pt"
    chosen, notes = resume_checkpoint(save_dir)
    for note in notes:
        print(f"[train] {note}", flush=True)
    if last.exists() and chosen != last:
        os.replace(last, last.with_name(last.name + ".unreadable"))
        print(f"[train] renamed it to {last.name}.unreadable", flush=True)
    if chosen is None:
        if notes:
            print("[train] no readable checkpoint: training starts from scratch", flush=True)
        return [], None
    if chosen == last:
        print(f"[train] resuming from {chosen}", flush=True)
        return [], chosen
    print(f"[train] resuming from {chosen}, the newest readable checkpoint", flush=True)
    return ["--restore-file", str(chosen)], chosen


def check_resume(save_dir: Path, data_bin: Path, args: list[str], with_changes: bool) -> None:
    """Refuses to resume save_dir's checkpoints with other data or flags than their training record
    holds, unless with_changes (then the record lists this continuation; its own fields stay)."""
    path = save_dir / TRAINING_DATA_RECORD
    if not path.is_file():
        print(f"[train] note: {save_dir} has no {TRAINING_DATA_RECORD}: what its checkpoints were trained on "
              f"cannot be checked, and no record is written for them", flush=True)
        return
    record = read_json(path)
    current = training_record(data_bin, args)
    dictionaries, others = resume_changes(record, current)
    if dictionaries:
        raise ValueError(
            f"--save-dir {save_dir} holds checkpoints trained with the dictionaries of {record['data_bin']}, which "
            f"differ from those of --data {data_bin} ({', '.join(dictionaries)}): token ids would mean other "
            f"words; use another --save-dir")
    if not others:
        return
    if not with_changes:
        raise ValueError(
            f"--save-dir {save_dir} holds checkpoints trained otherwise (per {path}): {'; '.join(others)}. "
            f"Use another --save-dir, or pass --resume-with-changes to continue them with these settings")
    print(f"[train] resuming with changes (--resume-with-changes): {'; '.join(others)}", flush=True)
    write_json(path, {**record, "continued": [*record.get("continued", []), current]}, indent=1)


def train(recipe: str, data: Path, save_dir: Path, criterion: str, seed: int = 1,
          extra_args: Sequence[str] = (), average_last: int | None = None, full_log: bool = False,
          resume_with_changes: bool = False, **criterion_kwargs) -> Path:
    """Runs (or resumes) fairseq-train; returns the checkpoint to evaluate.

    Shows fairseq's progress lines (all of its log with full_log); SAVE_DIR/train.log has all.
    A save dir another run is using is refused (FolderInUse); so is a resume with other data or
    flags than the checkpoints were trained with, unless resume_with_changes."""
    save_dir = Path(save_dir)
    # Held by this process and the fairseq child: released when both are gone, however they end.
    lock = lock_folder(save_dir, "training", ".stk-train.lock")
    try:
        for path in remove_checkpoint_temporaries(save_dir):  # no writer runs: we hold the lock
            print(f"[train] removed {path.name}, a checkpoint temporary a killed run left behind", flush=True)
        restore, resumed_from = resume_args(save_dir)
        args = train_command(recipe, data, save_dir, criterion, seed, [*restore, *extra_args], **criterion_kwargs)
        data_bin = resolve_data_bin(data)
        if resumed_from is None:
            record_training_data(save_dir, data_bin, args)  # evaluate checks it
        else:
            check_resume(save_dir, data_bin, args, resume_with_changes)
        started = time.time()
        run_fairseq("train", args, log_path=save_dir / "train.log", stream=True,
                    show=None if full_log else progress_line, append_log=True, pass_fds=(lock,))
    finally:
        os.close(lock)
    print(f"[train] {recipe}/{criterion} finished in {time.time() - started:.0f} s", flush=True)
    n_average = RECIPES[recipe].average_last if average_last is None else average_last
    if n_average:
        output = save_dir / f"checkpoint_avg{n_average}.pt"
        average_checkpoints(last_checkpoints(save_dir, n_average), output)
        return output
    return save_dir / "checkpoint_best.pt"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="Run a fairseq training recipe with any criterion.",
                                     epilog="Arguments after -- go to fairseq-train unchanged.")
    parser.add_argument("--recipe", required=True, choices=sorted(RECIPES))
    parser.add_argument("--data", type=Path, required=True, help="prepared directory or data-bin")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--criterion", default="stk",
                        help="stk, label_smoothed_cross_entropy, or any registered criterion")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--stk-k-ratio", type=float, default=STK_DEFAULTS["k_ratio"])
    parser.add_argument("--stk-delta", type=float, default=STK_DEFAULTS["delta"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--average-last", type=int, default=None,
                        help="average the last N checkpoints (default: the recipe's, 5 for wmt17)")
    parser.add_argument("--dry-run", action="store_true", help="print the fairseq-train command only")
    parser.add_argument("--full-log", action="store_true", help="show all of fairseq's log, not only progress")
    parser.add_argument("--resume-with-changes", action="store_true",
                        help="resume --save-dir's checkpoints although the data (same dictionaries) or the training "
                             "flags differ from their training-data.json (which keeps what they were trained on)")
    add_fairseq_train_args(parser)
    argv = list(argv) if argv is not None else __import__("sys").argv[1:]
    args = parser.parse_args(argv)
    extra = fairseq_train_args(parser, args, argv)
    kwargs = dict(label_smoothing=args.label_smoothing, stk_k_ratio=args.stk_k_ratio, stk_delta=args.stk_delta)
    if args.dry_run:
        print(shlex.join(fairseq_command("train", *train_command(
            args.recipe, args.data, args.save_dir, args.criterion, args.seed, extra, **kwargs))))
        return args.save_dir
    print(f"[train] recipe {args.recipe}: {RECIPES[args.recipe].description}; criterion {args.criterion}; "
          f"seed {args.seed}", flush=True)
    checkpoint = train(args.recipe, args.data, args.save_dir, args.criterion, args.seed, extra,
                       args.average_last, args.full_log, args.resume_with_changes, **kwargs)
    print(f"[train] checkpoint to evaluate: {checkpoint}")
    return checkpoint


if __name__ == "__main__":
    main()
