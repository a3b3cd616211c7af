"""A study's report from its finished runs: WORK/study.json, WORK/report.md and WORK/img/*.png.

Per system, the mean and spread over seeds; against the baseline, on the seeds both finished, the
paired t-test over seeds (the verdict), per-seed paired bootstraps and the two-level bootstrap (stats.py);
a variant with extra flags also against its plain system (systems.reference_of), by the same t-test.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ...data.io import atomic_write_text, read_lines
from ...data.prepared import PreparedCorpus
from ...files import read_json, write_json
from ..evaluate import paired_bootstrap
from .config import CONFIG, planned_runs
from .progress import log
from .stats import comparisons, holm_verdicts, mean_std, seed_sentence_bootstrap, seed_test, sentence_sampling_se
from .systems import parse_system, reference_of


def report_finished(work: Path, corpus=None) -> dict:
    """The report of the runs finished so far (a study still running or stopped early); `corpus` (a
    records.RecordedCorpus) stands in for the prepared data when the work folder came from records."""
    work = Path(work)
    path = work / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"--work {work} has no {CONFIG}: not a study directory")
    config = read_json(path)
    corpus = corpus or PreparedCorpus.load(Path(config["data"]))
    runs = []
    for seed in config["seeds"]:
        for system in map(parse_system, config["systems"]):
            run_dir = work / "runs" / system.id / f"seed{seed}"
            if (run_dir / "result.json").is_file():
                result = read_json(run_dir / "result.json")
                result["run_dir"] = str(run_dir.relative_to(work))
                runs.append(result)
    if not runs:
        raise ValueError(f"--work {work}: no finished run yet")
    # A system is compared with the baseline on the seeds both have finished.
    return report(work, config, corpus, runs, planned=planned_runs(config))


def seed_comparison(runs: list[dict], spec: str, reference: str, seeds: list[int]) -> dict:
    """The verdict's test of `spec` against `reference` on matched seeds: each seed's corpus-level
    difference, then the paired t-test over seeds (BLEU, chrF), and the same for the length ratio."""
    score = {(r["system"], r["seed"]): r for r in runs}

    def differences(key):
        return [score[(spec, s)][key] - score[(reference, s)][key] for s in seeds]

    return {"seed_test": {name: seed_test(differences(key)) for name, key in (("BLEU", "bleu"), ("chrF", "chrf"))},
            "length_ratio_delta": seed_test(differences("length_ratio"))}


def report(work: Path, config: dict, corpus: PreparedCorpus, runs: list[dict], planned: int | None = None) -> dict:
    """study.json, report.md and img/*.png from the finished runs."""
    from .render import figures, markdown

    references = corpus.references("test")
    lowercase, target_lang = corpus.config["lowercase"], corpus.config["target_lang"]
    hyps = {(r["system"], r["seed"]): read_lines(work / r["run_dir"] / r["hypotheses"]) for r in runs}
    systems = list(dict.fromkeys(r["system"] for r in runs))
    base = "baseline" if "baseline" in systems else None
    summary = {}
    for spec in systems:
        own = sorted((r for r in runs if r["system"] == spec), key=lambda r: r["seed"])
        entry = {"label": own[0]["label"], "k_ratio": own[0]["k_ratio"], "aggregate": own[0]["aggregate"],
                 "seeds": [r["seed"] for r in own]}
        for key in ("bleu", "chrf", "length_ratio"):
            entry[key] = dict(zip(("mean", "std"), mean_std([r[key] for r in own])))
        below = [r["tokens_below_lam"] for r in own if r["tokens_below_lam"]]
        if below:
            entry["tokens_below_lam"] = {
                "below_lam_fraction": mean_std([b["below_lam_fraction"] for b in below])[0],
                "mean_weight": mean_std([b["mean_weight"] for b in below])[0],
                "weight_below_fraction": {t: mean_std([b["weight_below_fraction"][t] for b in below])[0]
                                          for t in below[0]["weight_below_fraction"]},
                "lam": mean_std([b["lam"] for b in below])[0],
                "smoothers": sorted({b.get("smoother", "srelu") for b in below}),  # srelu before it was recorded
                "share_of_below": {k: mean_std([b["share_of_below"][k] for b in below])[0] for k in below[0]["share_of_below"]},
                "share_of_all": {k: mean_std([b["share_of_all"][k] for b in below])[0] for k in below[0]["share_of_all"]}}
        if base and spec != base:
            seeds = [s for s in entry["seeds"] if (base, s) in hyps]
            entry["matched_seeds"] = seeds
            per_seed = {}
            for s in seeds:
                _, table = paired_bootstrap({"baseline": hyps[(base, s)], spec: hyps[(spec, s)]}, references,
                                            lowercase, target_lang, config["bootstrap_samples"])
                per_seed[s] = {("chrF" if m.startswith("chrF") else m): rows[1][4] for m, rows in table.items()}
            entry["per_seed_bootstrap_p"] = per_seed
            if seeds:
                entry.update(seed_comparison(runs, spec, base, seeds))
                # The test set's share of the seed spread of d (the seed plan sizes the test set from it).
                entry["sentence_sampling_se"] = {"BLEU": sentence_sampling_se(
                    [hyps[(spec, s)] for s in seeds], [hyps[(base, s)] for s in seeds], references, "BLEU",
                    lowercase, target_lang, config["bootstrap_samples"])}
                for name in ("BLEU", "chrF"):  # secondary: the two-level bootstrap (stats.py)
                    result = seed_sentence_bootstrap([hyps[(spec, s)] for s in seeds], [hyps[(base, s)] for s in seeds],
                                                     references, name, lowercase, target_lang,
                                                     config["bootstrap_samples"])
                    entry[f"test_{name}"] = asdict(result)
        reference = reference_of(parse_system(spec), systems)
        if reference is not None:
            # A variant against its plain system (delta 0.1, EOS always averaged vs stk at the same k/n).
            seeds = [s for s in entry["seeds"] if (reference.spec, s) in hyps]
            entry["contrast"] = {"reference": reference.spec, "reference_label": reference.label,
                                 "matched_seeds": seeds, **(seed_comparison(runs, spec, reference.spec, seeds)
                                                            if seeds else {})}
        summary[spec] = entry
    # Holm over this study's comparisons (a page recomputes it over all of its studies).
    holm_verdicts(comparisons(summary))
    first = runs[0]
    study = {"config": config, "corpus": {"root": str(corpus.root), "manifest": corpus.manifest,
                                          "test_sentences": len(references)},
             "signatures": {"BLEU": first["bleu_signature"], "chrF": first["chrf_signature"]},
             "systems": summary, "runs": runs, "planned_runs": planned or len(runs)}
    catalogs = corpus.root / "catalogs.json"
    if catalogs.is_file():
        study["corpus"]["catalogs"] = read_json(catalogs)
    images = figures(study, work / "img")
    study["figures"] = {k: str(Path(v).relative_to(work)) for k, v in images.items()}
    write_json(work / "study.json", study, indent=1)
    text = markdown(study, image_prefix="")
    atomic_write_text(work / "report.md", text)
    log(f"wrote {work / 'study.json'}, {work / 'report.md'}, figures in {work / 'img'}")
    print(text, flush=True)
    return study
