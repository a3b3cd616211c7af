"""End to end: fairseq-train with each top-K hinge criterion for two epochs, then fairseq-generate."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fairseq")

REPO = Path(__file__).resolve().parents[1]
N_TEST = 12

TINY_TRANSFORMER = [
    "--arch", "transformer", "--encoder-layers", "1", "--decoder-layers", "1",
    "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
    "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
    "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
    "--share-decoder-input-output-embed",
]


def write_copy_corpus(folder: Path, seed: int = 0) -> None:
    """A toy translation task: the target is the source with every word mapped and the order reversed."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(30)]
    for split, n in (("train", 160), ("valid", 16), ("test", N_TEST)):
        src, tgt = [], []
        for _ in range(n):
            sentence = [rng.choice(words[: rng.choice((10, 30))]) for _ in range(rng.randint(3, 8))]
            src.append(" ".join(sentence))
            tgt.append(" ".join("t" + w[1:] for w in reversed(sentence)))
        (folder / f"{split}.src").write_text("\n".join(src) + "\n")
        (folder / f"{split}.tgt").write_text("\n".join(tgt) + "\n")


def run(args, cwd):
    # One thread: a tiny model gains nothing from two, and a busy 2-core machine makes every
    # two-thread op wait for the second thread (seconds per update instead of milliseconds).
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topk_corpus")
    write_copy_corpus(folder)
    run(["fairseq_cli.preprocess", "--source-lang", "src", "--target-lang", "tgt",
         "--trainpref", "train", "--validpref", "valid", "--testpref", "test",
         "--destdir", "bin", "--workers", "1"], folder)
    return folder / "bin"


@pytest.mark.slow
@pytest.mark.parametrize(
    "criterion,flags",
    [
        ("topk_hinge", ["--topk-k", "3", "--topk-eps", "0.5", "--label-smoothing", "0.1"]),
        ("imbalanced_topk_hinge", ["--topk-k", "3", "--topk-eps", "0.1", "--topk-max-m", "0.3",
                                   "--stk-aggregate", "average", "--topk-ce-mix", "0.3"]),
    ],
)
def test_train_two_epochs_then_generate(data_bin, tmp_path, criterion, flags):
    save = tmp_path / "ckpt"
    log = run(["fairseq_cli.train", str(data_bin), "--user-dir", str(REPO / "stk_nmt"), "--task", "translation",
               *TINY_TRANSFORMER, "--criterion", criterion, *flags,
               "--optimizer", "adam", "--lr", "3e-3", "--max-tokens", "400", "--max-epoch", "2",
               "--save-dir", str(save), "--no-epoch-checkpoints", "--no-progress-bar", "--log-format", "json",
               "--log-interval", "1", "--cpu", "--seed", "1", "--num-workers", "0"], tmp_path)
    epochs = [json.loads(line[line.index("{"):]) for line in log.splitlines() if '"train_loss"' in line]
    assert [int(e["epoch"]) for e in epochs] == [1, 2]
    for e in epochs:
        for key in ("train_loss", "train_nll_loss", "train_accuracy", "train_topk_accuracy", "train_wps"):
            assert key in e, (key, e)
        assert float(e["train_topk_accuracy"]) >= float(e["train_accuracy"])
    assert float(epochs[1]["train_nll_loss"]) < float(epochs[0]["train_nll_loss"])  # it learns
    out = run(["fairseq_cli.generate", str(data_bin), "--user-dir", str(REPO / "stk_nmt"), "--task", "translation",
               "--path", str(save / "checkpoint_last.pt"), "--gen-subset", "test", "--beam", "2",
               "--batch-size", "8", "--required-batch-size-multiple", "1", "--cpu"], tmp_path)
    hypotheses = [line for line in out.splitlines() if line.startswith("H-")]
    assert len(hypotheses) == N_TEST
