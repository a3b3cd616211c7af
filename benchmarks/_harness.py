"""Shared pieces of the benchmarks: peak-memory measurement in a fresh process, and the
"synthetic corpus + fairseq-train + words per second" runs.

Imported as `_harness` by the scripts of this folder (a script's own folder is on sys.path, and
tests/benchmarks/test_benchmark_smoke.py puts it there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLEAR_REFS = "/proc/self/clear_refs"

# ---- peak resident memory ------------------------------------------------------------------------


def status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM...), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def can_reset_peak() -> bool:
    return os.access(CLEAR_REFS, os.W_OK)


def peak_extra_bytes(fn: Callable[[], object]) -> Tuple[int, object]:
    """(growth of the peak resident set while fn() runs, fn's result), in this process.

    Writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current resident size
    (Linux >= 4.0); tracemalloc would miss torch's allocations, hence the OS counter. Run it in a
    fresh process (run_json_worker) so that memory freed by earlier work does not hide the peak.
    """
    with open(CLEAR_REFS, "w") as f:
        f.write("5")
    before = status_bytes("VmRSS")
    result = fn()
    return status_bytes("VmHWM") - before, result


def run_json_worker(argv: Sequence[str], threads: Optional[int] = None) -> dict:
    """Run `python argv...` in a fresh process with the repository importable; the JSON object
    printed on its last stdout line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, *argv], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- fairseq training runs -----------------------------------------------------------------------


def write_zipf_corpus(folder: Path, vocab: int, lines: int, seed: int, valid_lines: Optional[int] = None,
                      full_dictionaries: bool = True) -> None:
    """train/valid .src/.tgt of Zipf-distributed words (exponent 1.05, 8-29 words a line); the
    target is the source with its words mapped (s<i> -> t<i>) and reversed.

    full_dictionaries: also write dict.src.txt / dict.tgt.txt with every word of the vocabulary
    (expected counts, most frequent first), so the output layer has `vocab` entries however short
    the corpus is.
    """
    rng = np.random.default_rng(seed)
    probs = 1.0 / np.arange(1, vocab + 1) ** 1.05
    probs /= probs.sum()
    valid_lines = max(20, lines // 50) if valid_lines is None else valid_lines
    for split, n in (("train", lines), ("valid", valid_lines)):
        src, tgt = [], []
        for _ in range(n):
            ids = rng.choice(vocab, size=int(rng.integers(8, 30)), p=probs)
            src.append(" ".join(f"s{i}" for i in ids))
            tgt.append(" ".join(f"t{i}" for i in ids[::-1]))
        for ext, text in (("src", src), ("tgt", tgt)):
            tmp = folder / f".{split}.{ext}.tmp"
            tmp.write_text("\n".join(text) + "\n")
            os.replace(tmp, folder / f"{split}.{ext}")
    if full_dictionaries:
        expected = np.maximum(1, np.round(probs * lines * 19)).astype(int)
        for ext, prefix in (("src", "s"), ("tgt", "t")):
            tmp = folder / f".dict.{ext}.tmp"
            tmp.write_text("".join(f"{prefix}{i} {c}\n" for i, c in enumerate(expected)))
            os.replace(tmp, folder / f"dict.{ext}.txt")


def run_fairseq(tool: str, args: Sequence[str], cwd: Optional[Path] = None, threads: Optional[int] = None) -> str:
    """python -m fairseq_cli.<tool> args..., the plugin importable; stdout + stderr. Raises
    RuntimeError with the end of the log on failure."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-m", f"fairseq_cli.{tool}", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, env=env)
    log = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"fairseq_cli.{tool} failed:\n{log[-3000:]}")
    return log


def preprocess(corpus: Path, destdir: Path, threads: Optional[int] = None, dictionaries: bool = False) -> Path:
    """fairseq-preprocess of corpus/{train,valid}.{src,tgt}; with the corpus's dict.*.txt if
    `dictionaries`. Written to a temporary folder next to destdir, then renamed into place."""
    tmp = destdir.with_name(f".{destdir.name}.tmp")
    args = ["--source-lang", "src", "--target-lang", "tgt", "--trainpref", corpus / "train",
            "--validpref", corpus / "valid", "--destdir", tmp, "--workers", "1"]
    if dictionaries:
        args += ["--srcdict", corpus / "dict.src.txt", "--tgtdict", corpus / "dict.tgt.txt"]
    run_fairseq("preprocess", args, threads=threads)
    os.replace(tmp, destdir)
    return destdir


def small_transformer_args(dim: int, ffn: int) -> List[str]:
    """The benchmarks' transformer: 2+2 layers, width `dim`, feed-forward `ffn`, 4 heads (the
    shape of stk_nmt.translation.recipes' demo recipe, at any width)."""
    return ["--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
            "--encoder-embed-dim", str(dim), "--decoder-embed-dim", str(dim),
            "--encoder-ffn-embed-dim", str(ffn), "--decoder-ffn-embed-dim", str(ffn),
            "--encoder-attention-heads", "4", "--decoder-attention-heads", "4"]


def quiet_training_args(save_dir: Path, seed: int) -> List[str]:
    """No checkpoints, no validation, JSON epoch summaries only, CPU-friendly data loading."""
    return ["--user-dir", str(REPO / "stk_nmt"), "--seed", str(seed), "--save-dir", str(save_dir), "--no-save",
            "--disable-validation", "--no-progress-bar", "--log-format", "json", "--log-interval", "1000000",
            "--num-workers", "0"]


def epoch_summaries(log: str) -> List[dict]:
    """fairseq's per-epoch training summaries (the JSON of the lines with "train_wps")."""
    summaries = [json.loads(line[line.index("{"):]) for line in log.splitlines() if '"train_wps"' in line]
    if not summaries:
        raise RuntimeError(f"no train_wps epoch summary in the fairseq-train log:\n{log[-2000:]}")
    return summaries


def epoch_words_seconds(summaries: Sequence[dict]) -> List[Tuple[float, float]]:
    """Per epoch, (target words, wall seconds) from fairseq's wpb, num_updates and wps."""
    epochs, done = [], 0
    for summary in summaries:
        updates = int(float(summary["train_num_updates"])) - done
        done += updates
        words = float(summary["train_wpb"]) * updates
        wps = float(summary["train_wps"])
        epochs.append((words, words / wps if wps > 0 else float("nan")))
    return epochs
