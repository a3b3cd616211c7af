"""Training speed of --criterion stk against label_smoothed_cross_entropy, side by side.

Trains the same small transformer with both criteria in interleaved runs (A B, B A, ...) so that
machine load affects both alike, reads fairseq's own words-per-second (wps of the last epoch
summary, which excludes start-up), and prints every run and the median stk/baseline ratio.

    python benchmarks/bench_fairseq_wps.py                  # synthetic corpus built in a temp dir
    python benchmarks/bench_fairseq_wps.py --data-bin data-bin/iwslt14 --updates 200 --rounds 3
"""

import argparse
import statistics
import sys
import tempfile
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

CRITERIA = {
    "label_smoothed_cross_entropy": ["--criterion", "label_smoothed_cross_entropy"],
    "stk": ["--criterion", "stk"],
}


def synthetic_corpus(directory: Path, seed: int, sentences: int, vocab: int) -> Path:
    """A random parallel corpus (Zipf word frequencies), preprocessed with fairseq-preprocess."""
    write_zipf_corpus(directory, vocab, sentences, seed, valid_lines=100, full_dictionaries=False)
    return preprocess(directory, directory / "bin")


def train_wps(data_bin: Path, criterion_flags, args, save_dir: Path) -> float:
    cmd = [str(data_bin), *criterion_flags, "--label-smoothing", "0.1", *small_transformer_args(128, 256),
           "--optimizer", "adam", "--lr", "1e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "50",
           "--max-tokens", str(args.max_tokens), "--max-update", str(args.updates),
           *quiet_training_args(save_dir, args.seed)]
    if args.cpu:
        cmd.append("--cpu")
    # Words per second over the whole run: total target words / total time, epochs weighted by words.
    epochs = epoch_words_seconds(epoch_summaries(run_fairseq("train", cmd)))
    return sum(w for w, _ in epochs) / sum(s for _, s in epochs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-bin", type=Path, help="a fairseq-preprocess'ed directory (default: synthetic)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved A/B rounds")
    parser.add_argument("--updates", type=int, default=30, help="updates per run")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--sentences", type=int, default=3000, help="synthetic corpus size")
    parser.add_argument("--vocab", type=int, default=2000, help="synthetic vocabulary size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gpu", dest="cpu", action="store_false", help="train on the GPU (default: CPU)")
    args = parser.parse_args()
    for name in ("rounds", "updates", "max_tokens", "sentences", "vocab"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.data_bin is not None and not args.data_bin.is_dir():
        raise FileNotFoundError(f"--data-bin {args.data_bin} is not a directory")
    print(f"seed={args.seed} rounds={args.rounds} updates={args.updates} max_tokens={args.max_tokens} "
          f"device={'cpu' if args.cpu else 'gpu'}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_bin = args.data_bin or synthetic_corpus(tmp, args.seed, args.sentences, args.vocab)
        wps = {name: [] for name in CRITERIA}
        # A B, B A, A B ...: a drift in machine load does not favour either criterion.
        names = list(CRITERIA)
        runs = [(r, name) for r in range(args.rounds) for name in (names if r % 2 == 0 else names[::-1])]
        for r, name in tqdm(runs, desc="runs", file=sys.stderr):
            wps[name].append(train_wps(data_bin, CRITERIA[name], args, tmp / f"{name}{r}"))
            tqdm.write(f"round {r + 1}  {name:<30} wps {wps[name][-1]:9.1f}", file=sys.stderr)
    base, stk = wps["label_smoothed_cross_entropy"], wps["stk"]
    ratios = [s / b for s, b in zip(stk, base)]
    print(f"{'round':>5} {'lsce wps':>10} {'stk wps':>10} {'ratio':>7}")
    for r, (b, s, q) in enumerate(zip(base, stk, ratios), 1):
        print(f"{r:>5} {b:>10.1f} {s:>10.1f} {q:>7.3f}")
    print(f"median stk / label_smoothed_cross_entropy wps ratio: {statistics.median(ratios):.3f} (target >= 0.99)")


if __name__ == "__main__":
    main()
