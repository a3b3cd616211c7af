"""One (system, seed) of a study: train (or resume), evaluate and analyse; result.json is written last.

A finished run is kept while its key holds (integrity.py); a changed key redoes the run as far as the
change reaches: retrain, decode again, or repeat the analysis of lam.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ...data.io import atomic_write_text
from ...data.prepared import PreparedCorpus
from ...files import write_json
from ...host import describe_code, describe_host
from ..evaluate import evaluate_checkpoint, metrics
from ..fairseq_run import run_fairseq
from ..recipes import train_command
from ..resume import remove_checkpoint_temporaries
from .integrity import align_run, corpus_hashes, record_training_key, run_key
from .progress import log
from .systems import BASELINE, System
from .tokens import parse_train_log, tokens_below_lam


def machine() -> dict:
    """Where a run ran (recorded in result.json; the page names the machine from these records)."""
    return {**describe_host(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average": list(os.getloadavg())}


def run_one(config: dict, system: System, seed: int, corpus: PreparedCorpus, run_dir: Path,
            key: dict | None = None) -> dict:
    """Train (or resume), evaluate and analyse one (system, seed); result.json is written last.

    key (run_key): a finished run whose key differs is redone as far as the change reaches."""
    key = key or run_key(config, system.criterion_args(config["label_smoothing"], config["stk_args"]), seed,
                         corpus_hashes(corpus), corpus.config)
    result_path = run_dir / "result.json"
    previous, redo = align_run(run_dir, key, system.aggregate is not None, log)
    if not redo:
        return previous
    run_dir.mkdir(parents=True, exist_ok=True)
    for path in remove_checkpoint_temporaries(run_dir):  # the study's lock is held: no writer runs
        log(f"removed {path}, a checkpoint temporary a killed run left behind")
    started = time.time()
    machine_at_start = machine()
    checkpoint = run_dir / "checkpoint_last.pt"
    done = run_dir / "train.done"
    if not done.is_file():
        record_training_key(run_dir, key)
        attempt = len(list(run_dir.glob("train.*.log"))) + 1
        args = train_command(config["recipe"], corpus.root, run_dir, BASELINE, seed)
        # Replace the recipe's criterion flags by the system's; the budget is updates, not epochs.
        start = args.index("--criterion")
        end = args.index("--save-dir")
        args = (args[:start] + system.criterion_args(config["label_smoothing"], config["stk_args"]) + args[end:]
                + ["--max-update", str(config["max_update"]), "--max-epoch", "0", "--no-epoch-checkpoints",
                   "--log-interval", str(config["log_interval"]), *config["fairseq_args"]])
        log(f"train {system.label} seed {seed} (attempt {attempt}) -> {run_dir}")
        run_fairseq("train", args, log_path=run_dir / f"train.{attempt}.log", stream=True,
                    show=lambda line: "| train_inner |" in line or "| valid |" in line or "Error" in line)
        atomic_write_text(done, f"{checkpoint}\n")
    train_seconds = time.time() - started
    if "decode" in redo:
        log(f"evaluate {system.label} seed {seed} on test (beam {config['beam']})")
        hypotheses, scores = evaluate_checkpoint(
            corpus, checkpoint, "test", output_dir=run_dir, name="test", beam=config["beam"],
            extra_args=["--max-len-a", "1.5", "--max-len-b", "10", *config["generate_args"]])
        references = corpus.references("test")
        bleu = metrics(corpus.config["lowercase"], corpus.config["target_lang"])["BLEU"].corpus_score(
            hypotheses, [references])
    analysis = None if previous is None else previous["tokens_below_lam"]
    if system.aggregate is not None and "analysis" in redo:
        log(f"token losses vs lam: {system.label} seed {seed}, {config['analysis_sentences']} valid sentences")
        analysis = tokens_below_lam(checkpoint, corpus.data_bin, "valid", config["analysis_sentences"])
    logs = parse_train_log("".join(p.read_text(encoding="utf-8") for p in sorted(run_dir.glob("train.*.log"))))
    result = dict(previous, tokens_below_lam=analysis) if "decode" not in redo else {
        "system": system.spec, "label": system.label, "seed": seed,
        "criterion_args": system.criterion_args(config["label_smoothing"], config["stk_args"]),
        "k_ratio": system.k_ratio, "aggregate": system.aggregate,
        "bleu": scores.bleu, "chrf": scores.chrf, "bleu_signature": scores.bleu_signature,
        "chrf_signature": scores.chrf_signature, "length_ratio": bleu.sys_len / bleu.ref_len,
        "hyp_len": bleu.sys_len, "ref_len": bleu.ref_len,
        "hypotheses": str((run_dir / f"hyp.test.test.{corpus.config['target_lang']}").relative_to(run_dir)),
        "tokens_below_lam": analysis, "log": logs,
        "final_updates": max((r.get("num_updates", 0) for r in logs["train"]), default=None),
        "seconds": time.time() - started, "train_seconds": train_seconds,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_at_start, "load_average_end": list(os.getloadavg()),
        # The package source the grid process read when it began (fairseq's training subprocess reads
        # the plugin from the same files: the grid is not to be updated under a running process).
        "code": describe_code(),
    }
    result["key"] = key
    write_json(result_path, result, indent=1)  # the completion record
    # The checkpoint is not needed after the result (disk); a later change of the generate or analysis
    # settings then retrains the run (--keep-checkpoints: it only decodes or analyses again).
    if config["delete_checkpoints"]:
        for path in run_dir.glob("checkpoint*.pt"):
            path.unlink()
    return result
