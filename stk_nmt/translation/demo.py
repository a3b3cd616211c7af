"""The demo: embedded default corpus -> two small transformers -> a sacreBLEU comparison table.

    python -m stk_nmt.translation.demo [--work work/demo] [--epochs 12] [--seed 1]

1. generates and prepares the synthetic default corpus (6,000 training pairs, seeded);
2. trains the demo transformer with label_smoothed_cross_entropy and with stk (paper settings:
   k/n = 0.96, delta = 0.01; both with label smoothing 0.1), fairseq's progress log shown;
3. translates the test set with each (beam 5) and prints detokenised sacreBLEU and chrF with
   their signatures and the paired bootstrap p-values.
Every step is resumable: re-running skips what is finished (a training run continues from its
checkpoint_last.pt). Its run time is measured in the README.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ..data.default_corpus import DEFAULTS, prepare_default
from ..data.io import atomic_write_text
from ..data.prepared import PreparedCorpus
from .evaluate import compare, evaluate_checkpoint
from .recipes import train

CRITERIA = ("label_smoothed_cross_entropy", "stk")


def banner(step: str, started: float) -> None:
    print(f"\n=== [{time.time() - started:5.0f} s] {step}", flush=True)


def run_demo(work: Path, epochs: int = 12, seed: int = 1, criteria: tuple[str, ...] = CRITERIA,
             n_train: int = 6000, bootstrap_samples: int = 1000, vocab_size: int = DEFAULTS["vocab_size"]) -> str:
    work = Path(work)
    started = time.time()
    # One intra-op thread: the model is small, fairseq's data loader is a second process, and
    # on a busy machine more threads spin against each other and slow training down.
    # An OMP_NUM_THREADS set by the user wins.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    banner(f"1/3 preparing the default corpus in {work / 'data'}", started)
    prepare_default(work / "data", seed=seed, n_train=n_train, vocab_size=vocab_size)
    corpus = PreparedCorpus.load(work / "data")
    checkpoints = {}
    for i, criterion in enumerate(criteria, 1):
        save_dir = work / "checkpoints" / criterion
        done = save_dir / "train.done"
        banner(f"2/3 training {i}/{len(criteria)}: criterion {criterion}, {epochs} epochs -> {save_dir}", started)
        if done.is_file():
            print(f"{done} exists: training finished earlier, skipping")
            checkpoints[criterion] = Path(done.read_text().strip())
            continue
        checkpoint = train("demo", corpus.root, save_dir, criterion, seed=seed,
                           extra_args=["--max-epoch", str(epochs), "--log-interval", "10"])
        atomic_write_text(done, f"{checkpoint}\n")
        checkpoints[criterion] = checkpoint
    banner("3/3 translating the test set (beam 5) and scoring", started)
    systems, scores = {}, {}
    for criterion, checkpoint in checkpoints.items():
        systems[criterion], scores[criterion] = evaluate_checkpoint(
            corpus, checkpoint, "test", output_dir=work / "results", name=criterion,
            # Targets are about as long as sources: bound the search (an undertrained model
            # would otherwise run every beam to 200 tokens).
            extra_args=["--max-len-a", "1.5", "--max-len-b", "10"])
    references = corpus.references("test")
    table = compare(systems, scores, references, corpus.config["lowercase"], corpus.config["target_lang"],
                    n_samples=bootstrap_samples)
    elapsed = time.time() - started
    report = (f"sacreBLEU on the default corpus test set ({len(references)} sentences), "
              f"demo transformer, {epochs} epochs, seed {seed}\n{table}\n(total time {elapsed:.0f} s)")
    atomic_write_text(work / "results" / "table.txt", report + "\n")
    print("\n" + report, flush=True)
    return report


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("work/demo"), help="where data, checkpoints, results go")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--criteria", nargs="+", default=list(CRITERIA),
                        help="criteria to compare; the first is the baseline of the significance test")
    parser.add_argument("--train-size", type=int, default=6000, help="training pairs of the default corpus")
    parser.add_argument("--vocab-size", type=int, default=DEFAULTS["vocab_size"],
                        help="joint sentencepiece vocabulary (smaller for a smaller --train-size)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    return run_demo(args.work, args.epochs, args.seed, tuple(args.criteria), args.train_size,
                    vocab_size=args.vocab_size)


if __name__ == "__main__":
    main()
