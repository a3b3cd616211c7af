"""The embedded default corpus, generated and prepared in one command (the demo's data).

    python -m stk_nmt.data.default_corpus --out data/default

writes the synthetic pair (see stk_nmt/data/synthetic.py) to OUT/raw/ and prepares it like any
own corpus (raw text -> joint sentencepiece -> fairseq data-bin) into OUT/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import own, synthetic
from .pipeline import log, run_pipeline

DEFAULTS = {"train": 6000, "valid": 400, "test": 400, "vocab_size": 2000}


def prepare_default(out: Path, seed: int = 1, n_train: int = DEFAULTS["train"],
                    n_valid: int = DEFAULTS["valid"], n_test: int = DEFAULTS["test"],
                    vocab_size: int = DEFAULTS["vocab_size"], workers: int = 1) -> dict:
    out = Path(out)
    config = own.make_config(synthetic.SOURCE_LANG, synthetic.TARGET_LANG, 1, corpus="synthetic",
                             vocab_size=vocab_size, seed=seed)
    config.test_sets = {"test": f"synthetic test (seed {seed})"}

    def write_raw(tmp: Path) -> None:
        sizes = synthetic.write_corpus(tmp, seed, n_train, n_valid, n_test)
        log(f"generated the synthetic corpus (seed {seed}): {sizes}")

    return run_pipeline(out, config, write_raw, inputs=[], workers=workers,
                        options={"generator": "synthetic", "seed": seed, "n_train": n_train,
                                 "n_valid": n_valid, "n_test": n_test})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/default"))
    parser.add_argument("--train", type=int, default=DEFAULTS["train"])
    parser.add_argument("--valid", type=int, default=DEFAULTS["valid"])
    parser.add_argument("--test", type=int, default=DEFAULTS["test"])
    parser.add_argument("--vocab-size", type=int, default=DEFAULTS["vocab_size"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    return prepare_default(args.out, args.seed, args.train, args.valid, args.test, args.vocab_size,
                           args.workers)


if __name__ == "__main__":
    main()
