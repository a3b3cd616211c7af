"""fairseq training speed of the top-K hinge criteria against label_smoothed_cross_entropy.

    python benchmarks/bench_topk_hinge_fairseq.py                    # defaults below, ~2-4 minutes
    python benchmarks/bench_topk_hinge_fairseq.py --vocab 4000 --max-update 40 --rounds 3

Builds a synthetic translation corpus with a Zipf-distributed vocabulary (the target is the source
with its words mapped and reversed), binarises it with fairseq-preprocess, then trains the same
small transformer with each criterion for --max-update updates, same seed and batches. The rounds
interleave the criteria (A B C, A B C, ...) so a busy machine slows them alike; the table gives the
median words per second and its ratio to label_smoothed_cross_entropy, twice: per CPU second of
the training process (start-up cancelled by a 1-update run; steady on a shared machine) and per
wall-clock second (fairseq's train_wps). Work goes to --workdir (kept: a rerun skips preprocessing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]

CRITERIA = {
    "label_smoothed_cross_entropy": ["--label-smoothing", "0.1"],
    "topk_hinge": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "1.0", "--stk-aggregate", "average"],
    "topk_hinge (pure, mix 0)": ["--topk-k", "5", "--topk-eps", "1.0", "--topk-ce-mix", "0", "--stk-aggregate", "average"],
    "topk_hinge + ST_k": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "1.0"],
    "imbalanced_topk_hinge": ["--label-smoothing", "0.1", "--topk-k", "5", "--topk-eps", "0.01", "--stk-aggregate", "average"],
}


def write_corpus(folder: Path, vocab: int, lines: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = 1.0 / np.arange(1, vocab + 1) ** 1.05
    probs /= probs.sum()
    for split, n in (("train", lines), ("valid", max(20, lines // 50))):
        src, tgt = [], []
        for _ in range(n):
            ids = rng.choice(vocab, size=int(rng.integers(8, 30)), p=probs)
            src.append(" ".join(f"s{i}" for i in ids))
            tgt.append(" ".join(f"t{i}" for i in ids[::-1]))
        for ext, text in (("src", src), ("tgt", tgt)):
            tmp = folder / f".{split}.{ext}.tmp"
            tmp.write_text("\n".join(text) + "\n")
            os.replace(tmp, folder / f"{split}.{ext}")


def run(args, cwd: Path, threads: int) -> str:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout + out.stderr


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(workdir: Path, vocab: int, lines: int, seed: int, threads: int) -> Path:
    data_bin = workdir / f"bin-v{vocab}-n{lines}-s{seed}"
    if (data_bin / "train.src-tgt.tgt.idx").exists():
        return data_bin
    corpus = workdir / f"text-v{vocab}-n{lines}-s{seed}"
    corpus.mkdir(parents=True, exist_ok=True)
    write_corpus(corpus, vocab, lines, seed)
    tmp_bin = Path(tempfile.mkdtemp(dir=workdir, prefix=".bin-"))
    run(["fairseq_cli.preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", "train",
         "--validpref", "valid", "--destdir", str(tmp_bin), "--workers", "1"], corpus, threads)
    os.replace(tmp_bin, data_bin)
    return data_bin


def train(data_bin: Path, criterion: str, flags, args, workdir: Path, max_update: int):
    """One fairseq-train run: (words trained, fairseq's wall-clock train_wps, CPU seconds of the process)."""
    name = criterion.split(" ")[0]
    cpu0 = children_cpu_seconds()
    log = run(["fairseq_cli.train", str(data_bin), "--user-dir", str(REPO / "stk_nmt"), "--task", "translation",
               "--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
               "--encoder-embed-dim", str(args.dim), "--decoder-embed-dim", str(args.dim),
               "--encoder-ffn-embed-dim", str(4 * args.dim), "--decoder-ffn-embed-dim", str(4 * args.dim),
               "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
               "--share-decoder-input-output-embed", "--criterion", name, *flags,
               "--optimizer", "adam", "--lr", "5e-4", "--max-tokens", str(args.max_tokens),
               "--max-update", str(max_update), "--disable-validation", "--no-save",
               "--save-dir", str(workdir / "unused-ckpt"), "--no-progress-bar", "--log-format", "json",
               "--log-interval", "1000", "--cpu", "--seed", str(args.seed), "--num-workers", "0"], workdir, args.threads)
    cpu = children_cpu_seconds() - cpu0
    summaries = [json.loads(line[line.index("{"):]) for line in log.splitlines() if '"train_wps"' in line]
    if not summaries:
        raise RuntimeError(f"no train_wps in the log of {criterion}:\n{log[-2000:]}")
    words, wall, done = 0.0, 0.0, 0
    for summary in summaries:  # one per epoch
        updates = int(float(summary["train_num_updates"])) - done
        done += updates
        words += float(summary["train_wpb"]) * updates
        if float(summary["train_wps"]) > 0:
            wall += float(summary["train_wpb"]) * updates / float(summary["train_wps"])
    return words, words / wall if wall > 0 else float("nan"), cpu


def measure(data_bin: Path, criterion: str, args) -> dict:
    """Wall-clock words/s (fairseq's) of a --max-update run, and CPU words/s: the CPU seconds of that
    run minus those of a 1-update run (imports, data loading, the first update), so the start-up cost
    cancels and other processes on the machine do not count."""
    words, wall_wps, cpu = train(data_bin, criterion, CRITERIA[criterion], args, args.workdir, args.max_update)
    words_1, _, cpu_1 = train(data_bin, criterion, CRITERIA[criterion], args, args.workdir, 1)
    return {"wall_wps": wall_wps, "cpu_wps": (words - words_1) / max(cpu - cpu_1, 1e-9)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=2000, help="words per language before fairseq's dictionary")
    parser.add_argument("--lines", type=int, default=3000)
    parser.add_argument("--dim", type=int, default=128, help="transformer embedding dim (2+2 layers)")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--max-update", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each training run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("work/bench_topk_hinge_fairseq"))
    parser.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=list(CRITERIA), metavar="NAME")
    args = parser.parse_args(argv)
    for name in ("vocab", "lines", "dim", "max_tokens", "max_update", "rounds", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if "label_smoothed_cross_entropy" not in args.criteria:
        args.criteria.insert(0, "label_smoothed_cross_entropy")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"seed {args.seed}, vocab {args.vocab}, {args.lines} lines, dim {args.dim}, max-tokens {args.max_tokens}, "
          f"{args.max_update} updates, {args.threads} thread(s), {args.rounds} round(s)", flush=True)
    data_bin = prepare(args.workdir, args.vocab, args.lines, args.seed, args.threads)
    vocab_size = sum(1 for _ in open(data_bin / "dict.tgt.txt")) + 4
    results = {name: [] for name in args.criteria}
    runs = [(r, name) for r in range(args.rounds) for name in args.criteria]
    for _, name in tqdm(runs, desc="training runs", file=sys.stderr):
        results[name].append(measure(data_bin, name, args))
    print(f"target vocabulary {vocab_size} symbols (with specials)")
    print(f"{'criterion':<30} {'CPU words/s':>12} {'ratio':>6} {'wall words/s':>13} {'ratio':>6}   wall runs")
    base = {key: statistics.median(r[key] for r in results["label_smoothed_cross_entropy"]) for key in ("cpu_wps", "wall_wps")}
    for name in args.criteria:
        cpu = statistics.median(r["cpu_wps"] for r in results[name])
        wall = statistics.median(r["wall_wps"] for r in results[name])
        runs_text = ", ".join(f"{r['wall_wps']:.0f}" for r in results[name])
        print(f"{name:<30} {cpu:>12.0f} {cpu / base['cpu_wps']:>6.2f} {wall:>13.0f} {wall / base['wall_wps']:>6.2f}   {runs_text}")


if __name__ == "__main__":
    main()
