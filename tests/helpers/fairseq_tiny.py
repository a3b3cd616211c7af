"""A tiny parallel corpus and helpers that run the real fairseq CLIs on it (for the slow tests).

The corpus is a learnable toy translation: every source word maps to one target word, in order,
so a one-layer transformer reaches a non-zero BLEU within a few dozen updates.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
USER_DIR = str(REPO / "stk_nmt")

# One-layer transformer small enough for a few seconds per epoch on one CPU core.
TINY_ARCH = [
    "--arch", "transformer", "--encoder-layers", "1", "--decoder-layers", "1",
    "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
    "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
    "--encoder-attention-heads", "2", "--decoder-attention-heads", "2", "--dropout", "0",
]
TRAIN_COMMON = TINY_ARCH + [
    "--optimizer", "adam", "--lr", "5e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
    "--max-tokens", "200", "--no-progress-bar", "--log-interval", "1", "--log-format", "json",
    "--cpu", "--seed", "1", "--no-epoch-checkpoints", "--num-workers", "0",
]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def run(module, *args, extra_env=None, check=True):
    """`python -m module args...`; raises with the output tail when it fails and check is set."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
        env={**env(), **(extra_env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc


def make_corpus(directory: Path, seed: int = 0, n_train: int = 400, vocab: int = 12):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]

    def write(split, n):
        src, tgt = [], []
        for _ in range(n):
            sent = [rng.choice(words) for _ in range(rng.randint(4, 7))]
            src.append(" ".join(sent))
            tgt.append(" ".join(w.replace("w", "v") for w in sent))
        (directory / f"{split}.src").write_text("\n".join(src) + "\n")
        (directory / f"{split}.tgt").write_text("\n".join(tgt) + "\n")

    directory.mkdir(parents=True, exist_ok=True)
    write("train", n_train)
    write("valid", 40)
    write("test", 40)


def preprocess(directory: Path) -> Path:
    dest = directory / "bin"
    run("fairseq_cli.preprocess", "--source-lang", "src", "--target-lang", "tgt",
        "--trainpref", directory / "train", "--validpref", directory / "valid", "--testpref", directory / "test",
        "--destdir", dest, "--workers", "1")
    return dest


def parse_logs(output: str, kind: str = "train_inner"):
    """fairseq's --log-format json lines of one kind ('train_inner', 'train', 'valid') as dicts of floats."""
    records = []
    for line in output.splitlines():
        if f"| {kind} |" in line:
            record = json.loads(line.split(f"| {kind} | ", 1)[1])
            records.append({k: float(v) for k, v in record.items()})
    return records


def train(data_bin: Path, save_dir: Path, *args, check=True):
    """fairseq-train with the tiny model; returns (train_inner records, full output)."""
    proc = run("fairseq_cli.train", data_bin, "--user-dir", USER_DIR, "--save-dir", save_dir,
               *TRAIN_COMMON, *args, check=check)
    output = proc.stdout + proc.stderr
    return parse_logs(output), output


def build_trainer(data_bin: Path, save_dir: Path, *args, batches: int = 4):
    """fairseq's own Trainer, task, model and criterion in this process, as fairseq_cli.train builds
    them from the tiny-model flags + args; returns (trainer, the first `batches` training batches)."""
    import itertools

    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    # The criteria are registered by importing them explicitly; no --user-dir, whose import fairseq
    # refuses for a module already in sys.modules under another path.
    import stk_nmt.criterions  # noqa: F401

    parser = options.get_training_parser()
    argv = [str(data_bin), "--save-dir", str(save_dir), *TRAIN_COMMON, *map(str, args)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, argv))
    torch.manual_seed(cfg.common.seed)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    trainer = Trainer(cfg, task, model, criterion)
    itr = task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        seed=cfg.common.seed,
    ).next_epoch_itr(shuffle=False)
    return trainer, list(itertools.islice(itr, batches))
