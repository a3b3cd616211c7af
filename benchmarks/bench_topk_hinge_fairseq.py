"""fairseq training speed of the top-K hinge criteria against label_smoothed_cross_entropy.

    python benchmarks/bench_topk_hinge_fairseq.py                    # defaults below
    python benchmarks/bench_topk_hinge_fairseq.py --dims 128 --rounds 3 --criteria topk_hinge

Builds a synthetic translation corpus with a Zipf-distributed vocabulary (the target is the source
with its words mapped and reversed), binarises it with fairseq-preprocess, then trains the same
small transformer (width --dims, each) with each criterion for --epochs epochs, same seed and
batches. The rounds interleave the criteria (A B C, A B C, ...) so a busy machine slows them alike;
the table gives the median words per second and its ratio to label_smoothed_cross_entropy:
- "first epoch" and "later epochs": per CPU second of the training process. The later epochs'
  figure is (CPU seconds of the --epochs run - those of a 1-epoch run) over the words in between,
  so start-up and the first epoch (flat scores: the top-K hinge's truncation falls back to the
  dense noise) cancel; the first epoch's is the 1-epoch run less a 1-update run (start-up);
- "wall, later": fairseq's wall-clock train_wps of the epochs after the first.
Work goes to --workdir (kept: a rerun skips preprocessing).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from pathlib import Path

from tqdm import tqdm

from _harness import (
    epoch_summaries,
    epoch_words_seconds,
    preprocess,
    quiet_training_args,
    run_fairseq,
    small_transformer_args,
    write_zipf_corpus,
)

from stk_nmt.files import write_json

CRITERIA = {
    "label_smoothed_cross_entropy": ["--label-smoothing", "0.1"],
    "topk_hinge (dense noise)": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "1.0", "--stk-aggregate",
                                 "average", "--topk-hinge-noise", "dense"],
    "topk_hinge": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "1.0", "--stk-aggregate", "average"],
    "topk_hinge (pure, mix 0)": ["--topk-k", "5", "--topk-eps", "1.0", "--topk-ce-mix", "0", "--stk-aggregate", "average"],
    "topk_hinge + ST_k": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "1.0"],
    "imbalanced_topk_hinge": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "0.01", "--topk-scale", "1",
                              "--stk-aggregate", "average"],
    "imbalanced_topk_hinge (truncated noise)": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "0.01",
                                                "--topk-scale", "1",
                                                "--stk-aggregate", "average", "--topk-hinge-noise", "truncated"],
}
DEFAULT_CRITERIA = ["label_smoothed_cross_entropy", "topk_hinge", "imbalanced_topk_hinge"]


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(workdir: Path, vocab: int, lines: int, seed: int, threads: int) -> Path:
    data_bin = workdir / f"bin-v{vocab}-n{lines}-s{seed}-fulldict"
    if (data_bin / "train.src-tgt.tgt.idx").exists():
        return data_bin
    corpus = workdir / f"text-v{vocab}-n{lines}-s{seed}"
    corpus.mkdir(parents=True, exist_ok=True)
    write_zipf_corpus(corpus, vocab, lines, seed)
    return preprocess(corpus, data_bin, threads, dictionaries=True)


def train(data_bin: Path, criterion: str, flags, args, workdir: Path, dim: int, stop):
    """One fairseq-train run until `stop` (fairseq flags): per-epoch (words, wall seconds), CPU seconds."""
    name = criterion.split(" ")[0]
    cpu0 = children_cpu_seconds()
    log = run_fairseq("train", [str(data_bin), "--task", "translation", *small_transformer_args(dim, 4 * dim),
                                "--share-decoder-input-output-embed", "--criterion", name, *flags,
                                "--optimizer", "adam", "--lr", "5e-4", "--max-tokens", str(args.max_tokens), *stop,
                                *quiet_training_args(workdir / "unused-ckpt", args.seed), "--cpu"],
                      cwd=workdir, threads=args.threads)
    cpu = children_cpu_seconds() - cpu0
    return epoch_words_seconds(epoch_summaries(log)), cpu


def measure(data_bin: Path, criterion: str, dim: int, args) -> dict:
    """CPU words/s of the first epoch and of the later ones, and fairseq's wall-clock words/s of the
    later ones. Runs of --epochs epochs, of 1 epoch and of 1 update: differences of their CPU
    seconds cancel the start-up (imports, data loading) and separate the first epoch; other
    processes on the machine do not count."""
    flags = CRITERIA[criterion]
    epochs, cpu = train(data_bin, criterion, flags, args, args.workdir, dim, ["--max-epoch", str(args.epochs)])
    first, cpu_1 = train(data_bin, criterion, flags, args, args.workdir, dim, ["--max-epoch", "1"])
    one, cpu_0 = train(data_bin, criterion, flags, args, args.workdir, dim, ["--max-update", "1"])
    later_words = sum(w for w, _ in epochs[1:])
    return {
        "first_cpu_wps": (first[0][0] - one[0][0]) / max(cpu_1 - cpu_0, 1e-9),
        "later_cpu_wps": later_words / max(cpu - cpu_1, 1e-9),
        "later_wall_wps": later_words / sum(s for _, s in epochs[1:]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=8000, help="words per language (the dictionaries hold them all)")
    parser.add_argument("--lines", type=int, default=600, help="training sentences (8-29 words each)")
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 256], help="transformer widths (2+2 layers)")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (>= 2: the first is reported apart)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each training run")
    parser.add_argument("--seed", type=int, default=1)
    # Absolute: fairseq-train runs with the workdir as its cwd, where a relative path would not resolve.
    parser.add_argument("--workdir", type=lambda p: Path(p).resolve(), default=Path("work/bench_topk_hinge_fairseq").resolve())
    parser.add_argument("--criteria", nargs="+", default=DEFAULT_CRITERIA, choices=list(CRITERIA), metavar="NAME",
                        help=f"any of {list(CRITERIA)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    for name in ("vocab", "lines", "max_tokens", "rounds", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.epochs < 2:
        raise ValueError(f"--epochs must be >= 2 (the first epoch is reported apart), got {args.epochs}")
    if min(args.dims) < 8 or any(d % 4 for d in args.dims):
        raise ValueError(f"--dims must be multiples of 4 (4 attention heads), >= 8, got {args.dims}")
    if "label_smoothed_cross_entropy" not in args.criteria:
        args.criteria.insert(0, "label_smoothed_cross_entropy")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"seed {args.seed}, vocab {args.vocab}, {args.lines} lines, dims {args.dims}, max-tokens {args.max_tokens}, "
          f"{args.epochs} epochs, {args.threads} thread(s), {args.rounds} round(s)", flush=True)
    data_bin = prepare(args.workdir, args.vocab, args.lines, args.seed, args.threads)
    vocab_size = sum(1 for _ in open(data_bin / "dict.tgt.txt")) + 4
    results = {(dim, name): [] for dim in args.dims for name in args.criteria}
    runs = [(dim, name) for _ in range(args.rounds) for dim in args.dims for name in args.criteria]
    for dim, name in tqdm(runs, desc="training runs", file=sys.stderr):
        results[dim, name].append(measure(data_bin, name, dim, args))
    print(f"target vocabulary {vocab_size} symbols (with specials); words/s (ratio to label_smoothed_cross_entropy)")
    keys = ("first_cpu_wps", "later_cpu_wps", "later_wall_wps")
    print(f"{'dim':>4} {'criterion':<28} {'CPU, first epoch':>18} {'CPU, later epochs':>18} {'wall, later':>16}")
    table = []
    for dim in args.dims:
        base = {key: statistics.median(r[key] for r in results[dim, "label_smoothed_cross_entropy"]) for key in keys}
        for name in args.criteria:
            med = {key: statistics.median(r[key] for r in results[dim, name]) for key in keys}
            table.append({"dim": dim, "criterion": name, **med, **{f"{key}_ratio": med[key] / base[key] for key in keys}})
            cells = " ".join(f"{med[key]:>9.0f} ({med[key] / base[key]:.2f})" for key in keys)
            print(f"{dim:>4} {name:<28} {cells}", flush=True)
    if args.json:
        write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()}, "vocab": vocab_size,
                               "rows": table, "runs": {f"{d} {n}": r for (d, n), r in results.items()}})


if __name__ == "__main__":
    main()
