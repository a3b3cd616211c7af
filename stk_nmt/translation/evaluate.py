"""Detokenised sacreBLEU (and chrF) of fairseq checkpoints on a prepared corpus.

    python -m stk_nmt.translation.evaluate --data data/iwslt14.de-en \
        --checkpoint ckpt/base/checkpoint_best.pt [--compare ckpt/stk/checkpoint_best.pt] [--subset test]

Checks that the checkpoint was trained with the corpus's dictionaries (their SHA-256, see
checkpoints.training_dictionaries), runs fairseq-generate (beam 5, --required-batch-size-multiple 1 so no final batch is dropped,
--remove-bpe sentencepiece, --user-dir stk_nmt so the plugin is loaded), takes the H- lines in
sentence-id order, detokenises them when the corpus was Moses-tokenised, checks there is one
hypothesis per reference, and scores against the raw reference text with sacreBLEU, lowercased
when the corpus was lowercased (IWSLT14). With --compare, both checkpoints are scored and
sacrebleu's paired bootstrap resampling test says whether the difference is significant.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest
from tabulate import tabulate

from ..data.io import atomic_write_lines, atomic_write_text
from ..data.prepared import PreparedCorpus
from ..files import write_json
from .resume import unreadable_reason
from .training_record import dictionary_hashes, training_dictionaries
from .fairseq_run import USER_DIR, language_args, run_fairseq

_HYPOTHESIS = re.compile(r"^H-(\d+)\t[^\t]*\t(.*)$")


def extract_hypotheses(generate_output: str) -> dict[int, str]:
    """Sentence id -> hypothesis text from fairseq-generate's H-<id>\\t<score>\\t<text> lines."""
    hypotheses: dict[int, str] = {}
    for line in generate_output.splitlines():
        match = _HYPOTHESIS.match(line)
        if match:
            sentence_id = int(match.group(1))
            if sentence_id in hypotheses:
                raise ValueError(f"generate output has two hypotheses for sentence {sentence_id} "
                                 f"(use --nbest 1)")
            hypotheses[sentence_id] = match.group(2)
    return hypotheses


def ordered_hypotheses(hypotheses: dict[int, str], n_references: int) -> list[str]:
    """Hypotheses in reference order; a dropped or extra sentence raises ValueError."""
    if len(hypotheses) != n_references or set(hypotheses) != set(range(n_references)):
        missing = sorted(set(range(n_references)) - set(hypotheses))
        extra = sorted(set(hypotheses) - set(range(n_references)))
        raise ValueError(
            f"hypothesis count {len(hypotheses)} != reference count {n_references}"
            + (f"; missing sentence ids {missing[:10]}{' ...' if len(missing) > 10 else ''}" if missing else "")
            + (f"; unexpected ids {extra[:10]}" if extra else "")
            + " (fairseq-generate skipped sentences: see its log for inputs longer than the model's "
            "--max-source-positions, or a data-bin whose test subset differs from the references)")
    return [hypotheses[i] for i in range(n_references)]


def metrics(lowercase: bool, target_lang: str) -> dict[str, BLEU | CHRF]:
    # sacrebleu's own Chinese tokeniser for Chinese output; 13a otherwise.
    bleu = BLEU(lowercase=lowercase, trg_lang="zh" if target_lang == "zh" else "")
    return {"BLEU": bleu, "chrF": CHRF(lowercase=lowercase)}


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_text: str = ""


def score(hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False,
          target_lang: str = "") -> Scores:
    """Corpus BLEU and chrF of detokenised hypotheses against raw references, with signatures."""
    if len(hypotheses) != len(references):
        raise ValueError(f"hypothesis count {len(hypotheses)} != reference count {len(references)}")
    if not references:
        raise ValueError("no references to score against")
    m = metrics(lowercase, target_lang)
    bleu = m["BLEU"].corpus_score(list(hypotheses), [list(references)])
    chrf = m["chrF"].corpus_score(list(hypotheses), [list(references)])
    return Scores(bleu.score, chrf.score, str(m["BLEU"].get_signature()), str(m["chrF"].get_signature()),
                  bleu_text=str(bleu))


def paired_bootstrap(systems: dict[str, Sequence[str]], references: Sequence[str], lowercase: bool = False,
                     target_lang: str = "", n_samples: int = 1000) -> tuple[dict, dict]:
    """sacrebleu's paired bootstrap test; the first system is the baseline.

    Returns (signatures by metric, {metric: [(system, score, mean, ci, p_value), ...]})."""
    named = [(name, list(hyps)) for name, hyps in systems.items()]
    signatures, results = PairedTest(named, metrics(lowercase, target_lang), references=[list(references)],
                                     test_type="bs", n_samples=n_samples)()
    table = {metric: [(name, r.score, r.mean, r.ci, r.p_value) for name, r in zip(results["System"], rows)]
             for metric, rows in results.items() if metric != "System"}
    return {metric: str(sig) for metric, sig in signatures.items()}, table


def check_dictionaries(corpus: PreparedCorpus, checkpoint: Path) -> None:
    """Refuses a checkpoint trained with other dictionaries than the corpus's (same sizes are
    not enough: the token ids would mean other words)."""
    trained = training_dictionaries(checkpoint)
    if trained is None:
        print(f"note: cannot tell which data {checkpoint} was trained on (no training-data.json next to it, "
              f"and its task.data is gone): its dictionaries are not checked against {corpus.data_bin}")
        return
    where, hashes = trained
    ours = dictionary_hashes(corpus.data_bin)
    if hashes != ours:
        differ = sorted(name for name in set(hashes) | set(ours) if hashes.get(name) != ours.get(name))
        raise ValueError(
            f"--checkpoint {checkpoint} was trained with the dictionaries of {where}, which differ from "
            f"those of --data {corpus.root} ({corpus.data_bin}): {', '.join(differ)}; evaluate it on the "
            f"corpus it was trained on")


def check_readable(checkpoint: Path) -> None:
    """Refuses a torn checkpoint before fairseq-generate fails on it with an error naming no file."""
    reason = unreadable_reason(checkpoint)
    if reason is None:
        return
    if re.fullmatch(r"checkpoint_avg\d+\.pt", checkpoint.name):
        remedy = "average again (the recipe's --average-last, or averaging.average_checkpoints) to rewrite it"
    elif checkpoint.name == "checkpoint_best.pt":
        remedy = ("evaluate checkpoint_last.pt or an averaged checkpoint instead, or retrain to rewrite it "
                  "(fairseq writes checkpoint_best.pt at a better validation loss)")
    else:
        remedy = "evaluate another checkpoint of the run, or retrain to rewrite it"
    raise ValueError(f"--checkpoint {checkpoint} is unreadable ({reason}), e.g. cut short by a kill or a full "
                     f"disk while it was written: {remedy}")


def generate(corpus: PreparedCorpus, checkpoint: Path, subset: str, beam: int = 5, batch_size: int = 128,
             lenpen: float = 1.0, seed: int = 1, extra_args: Sequence[str] = ()) -> str:
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    check_readable(checkpoint)
    check_dictionaries(corpus, checkpoint)
    args = [str(corpus.data_bin), *language_args(corpus.data_bin), "--path", str(checkpoint), "--user-dir", USER_DIR,
            "--gen-subset", subset, "--beam", str(beam), "--lenpen", str(lenpen), "--nbest", "1",
            "--batch-size", str(batch_size), "--required-batch-size-multiple", "1",
            "--remove-bpe", "sentencepiece", "--seed", str(seed), *extra_args]
    return run_fairseq("generate", args)


def evaluate_checkpoint(corpus: PreparedCorpus, checkpoint: Path, subset: str = "test",
                        output_dir: Path | None = None, name: str = "system", **generate_kwargs) -> tuple[list[str], Scores]:
    """Generates, orders, detokenises, checks and scores; writes the hypotheses when output_dir."""
    references = corpus.references(subset)
    output = generate(corpus, checkpoint, subset, **generate_kwargs)
    hypotheses = corpus.postprocess(ordered_hypotheses(extract_hypotheses(output), len(references)))
    result = score(hypotheses, references, lowercase=corpus.config["lowercase"],
                   target_lang=corpus.config["target_lang"])
    if output_dir is not None:
        atomic_write_text(Path(output_dir) / f"generate-{subset}.{name}.txt", output)
        atomic_write_lines(Path(output_dir) / f"hyp.{subset}.{name}.{corpus.config['target_lang']}", hypotheses)
    return hypotheses, result


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A plain-text table: system names left, the (already formatted) scores right-aligned."""
    # disable_numparse: the cells are formatted strings ("27.50", "baseline"); parsing would reformat them.
    return tabulate(rows, headers=header, disable_numparse=True,
                    colalign=("left",) + ("right",) * (len(header) - 1))


def compare(systems: dict[str, list[str]], scores: dict[str, Scores], references: list[str],
            lowercase: bool, target_lang: str, n_samples: int = 1000) -> str:
    """A comparison table: BLEU, chrF, and (for two or more systems) bootstrap p-values."""
    first = next(iter(scores.values()))
    lines = []
    if len(systems) > 1:
        signatures, table = paired_bootstrap(systems, references, lowercase, target_lang, n_samples)
        p_values = {metric: {name: p for name, _, _, _, p in rows} for metric, rows in table.items()}
        chrf_key = next(k for k in table if k.startswith("chrF"))
        rows = []
        for name, result in scores.items():
            p_bleu, p_chrf = p_values["BLEU"][name], p_values[chrf_key][name]
            rows.append((name, f"{result.bleu:.2f}", f"{result.chrf:.2f}",
                         "baseline" if p_bleu is None else f"{p_bleu:.4f}",
                         "baseline" if p_chrf is None else f"{p_chrf:.4f}"))
        lines.append(format_table(rows, ("system", "BLEU", "chrF", "p(BLEU)", "p(chrF)")))
        lines.append(f"paired bootstrap resampling, {n_samples} samples; p < 0.05: the difference to "
                     f"the baseline is significant")
        lines.append(f"BLEU signature: {signatures['BLEU']}")
        lines.append(f"chrF signature: {signatures[chrf_key]}")
    else:
        rows = [(name, f"{r.bleu:.2f}", f"{r.chrf:.2f}") for name, r in scores.items()]
        lines.append(format_table(rows, ("system", "BLEU", "chrF")))
        lines.append(f"BLEU signature: {first.bleu_signature}")
        lines.append(f"chrF signature: {first.chrf_signature}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Detokenised sacreBLEU/chrF of fairseq checkpoints.")
    parser.add_argument("--data", type=Path, required=True, help="a directory made by a prepare script")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the (baseline) checkpoint")
    parser.add_argument("--compare", type=Path, help="a second checkpoint, tested against the first")
    parser.add_argument("--names", nargs="+", help="system names for the table (default: the checkpoint paths)")
    parser.add_argument("--subset", default="test", help="valid, test, test1, ... (see prepared.json)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--lenpen", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-len-a", type=float, default=0, help="fairseq-generate: max length a*src_len+b")
    parser.add_argument("--max-len-b", type=int, default=200)
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    parser.add_argument("--output-dir", type=Path, help="where to write generate output, hypotheses and scores")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    checkpoints = [args.checkpoint] + ([args.compare] if args.compare else [])
    names = args.names or [str(c) for c in checkpoints]
    if len(names) != len(checkpoints):
        raise ValueError(f"--names needs {len(checkpoints)} names, got {names}")
    corpus = PreparedCorpus.load(args.data)
    set_name = corpus.manifest["test_sets"].get(args.subset, args.subset)
    print(f"evaluating on {args.data} subset {args.subset} ({set_name}), beam {args.beam}, seed {args.seed}")
    systems, scores = {}, {}
    for name, checkpoint in zip(names, checkpoints):
        systems[name], scores[name] = evaluate_checkpoint(
            corpus, checkpoint, args.subset, args.output_dir, name.replace("/", "_"), beam=args.beam,
            batch_size=args.batch_size, lenpen=args.lenpen, seed=args.seed,
            extra_args=["--max-len-a", str(args.max_len_a), "--max-len-b", str(args.max_len_b)])
        print(f"{name}: {scores[name].bleu_text}")
    references = corpus.references(args.subset)
    table = compare(systems, scores, references, corpus.config["lowercase"], corpus.config["target_lang"],
                    args.bootstrap_samples)
    print(table)
    summary = {name: {"bleu": s.bleu, "chrf": s.chrf, "bleu_signature": s.bleu_signature,
                      "chrf_signature": s.chrf_signature} for name, s in scores.items()}
    if args.output_dir:
        write_json(args.output_dir / f"scores.{args.subset}.json", summary, indent=1)
        atomic_write_text(args.output_dir / f"table.{args.subset}.txt", table + "\n")
    return summary


if __name__ == "__main__":
    main()
