"""Does ST_k help translation? A grid of systems x seeds, trained alike, evaluated, and tested.

    python -m stk_nmt.translation.study run --data data/catalogs.en-fr --work work/study-fr \
        --systems baseline stk:0.96 stk:0.9 stk:0.8 --seeds 1 2 3 --max-update 400 \
        [--recipe demo] [--beam 5] [--stk-args "--stk-delta 0.01"] [--fairseq-args "--fp16"] [-- ...]
    python -m stk_nmt.translation.study page --studies work/study-fr work/study-es --out docs/study.md
    python -m stk_nmt.translation.study grid --preset catalogs --data-root work/data --work-root work \
        --records docs/study-runs [--pairs fr es it] [--seeds 1 2 3 4 5]
    python -m stk_nmt.translation.study page --records docs/study-runs/fr docs/study-runs/es --out docs/study.md

`run` trains every (system, seed) with the same recipe and update budget (fairseq-train, resumed from
checkpoint_last.pt when a run was interrupted), translates the test set with the existing
evaluation (detokenised sacreBLEU and chrF with signatures), measures which target tokens of the
validation set fall below the final lam, and writes RUN/result.json atomically as the last step:
a run with result.json is finished, so a killed study continues where it stopped. A finished run is
kept while its key holds: the data's hashes, the system's flags, the generate arguments and the
analysis settings (study_integrity.py); a changed key retrains, decodes again or repeats the
analysis, as far as the change reaches, and says so. One `study run` at a time per WORK (a second is
refused). It then writes WORK/study.json (every run), WORK/report.md (tables) and WORK/img/*.png.
`page` composes one or more studies into a documentation page (figures copied next to it).

Systems: `baseline` (label_smoothed_cross_entropy), `stk:R` (ST_k at k/n = R), `atk:R` (AT_k, the
exact mean of the k largest) and `NAME:R,--flag=value,...` for extra --stk-* flags of one system;
--stk-args apply to every non-baseline system. Every system uses label smoothing 0.1. The
checkpoint evaluated is checkpoint_last.pt (same number of updates for all; no selection on a
validation loss that differs between criteria). Device and precision flags go to fairseq
unchanged: --fairseq-args "--fp16" or anything after --; without --cpu fairseq uses a GPU if
it has one.

`--preset NAME` (PRESETS) sets the recipe, the update budget and, unless given, the systems and seeds
of a named study. `grid` runs a preset over several catalog pairs (preparing a missing corpus first),
ordered seed by seed: all systems of seed 1 on every pair, then seed 2, ... so that an interrupted grid
leaves whole matched seeds; each finished run is packed into RECORDS/<pair>/ (study_records.py), from
which `page --records` re-renders the page in a fresh clone. Re-running the same command resumes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.io import atomic_write_text, read_lines
from ..files import locked_folder, read_json, write_json
from .evaluate import PreparedCorpus, evaluate_checkpoint, metrics, paired_bootstrap
from .fairseq_run import add_fairseq_train_args, attach_flag_values, fairseq_train_args, run_fairseq
from .recipes import RECIPES, train_command
from .resume import remove_checkpoint_temporaries
from .study_integrity import align_run, check_system, corpus_hashes, record_training_key, run_key
from .study_records import check_same_corpus, pack_run, restore_runs, unpack_study, write_corpus_record
from .study_stats import holm_verdicts, mean_std, seed_sentence_bootstrap, seed_test
from .study_tokens import parse_train_log, tokens_below_lam

BASELINE = "label_smoothed_cross_entropy"
CONFIG = "study-config.json"
# What makes runs comparable: a study directory refuses a second configuration of these.
FIXED_KEYS = ("data", "recipe", "max_update", "fairseq_args", "stk_args", "beam", "label_smoothing")


@dataclass(frozen=True)
class Preset:
    description: str
    recipe: str
    max_update: int
    systems: tuple[str, ...]
    seeds: tuple[int, ...]
    pairs: tuple[str, ...]  # catalog target languages (grid)
    catalog_args: tuple[str, ...] = ()  # for stk_nmt.data.catalogs (grid prepares a missing corpus)


# The systems of the question "does ST_k help translation": the baseline, ST_k and AT_k at the paper's
# k/n, ST_k at the paper's Table 8 delta, and ST_k with end-of-sentence tokens always averaged.
STUDY_SYSTEMS = ("baseline", "stk:0.96", "atk:0.96", "stk:0.96,--stk-delta=0.1",
                 "stk:0.96,--stk-always-average=eos")
PRESETS = {
    "catalogs": Preset(
        "the recipe `study` for 800 updates on an en->X gettext-catalog corpus (about 40k pairs)",
        recipe="study", max_update=800, systems=STUDY_SYSTEMS, seeds=(1, 2, 3, 4, 5), pairs=("fr", "es", "it"),
        catalog_args=("--valid-fraction", "0.01", "--test-fraction", "0.03")),
}


def machine() -> dict:
    """Where a run ran (recorded in result.json; the page names the machine from these records)."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "system": platform.platform(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"), "load_average": list(os.getloadavg())}


def log(message: str) -> None:
    print(f"[study {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class System:
    spec: str
    criterion: str
    aggregate: str | None  # None for the baseline
    k_ratio: float | None
    flags: tuple[str, ...]

    @property
    def id(self) -> str:
        """A directory name."""
        return re.sub(r"[^A-Za-z0-9.=_-]+", "_", self.spec.replace(":", "-").replace(",", "_")).strip("_")

    @property
    def label(self) -> str:
        if self.aggregate is None:
            return "baseline (lsce)"
        extra = " " + " ".join(self.flags) if self.flags else ""
        return f"{self.aggregate} k/n={self.k_ratio:g}{extra}"

    def criterion_args(self, label_smoothing: float, stk_args: list[str]) -> list[str]:
        args = ["--criterion", self.criterion, "--label-smoothing", str(label_smoothing)]
        if self.aggregate is not None:
            args += ["--stk-aggregate", self.aggregate, "--stk-k-ratio", str(self.k_ratio), *stk_args, *self.flags]
        return args


def parse_system(spec: str) -> System:
    if spec in ("baseline", BASELINE):
        return System("baseline", BASELINE, None, None, ())
    head, *flag_parts = spec.split(",")
    name, _, ratio = head.partition(":")
    if name not in ("stk", "atk", "matk") or not ratio:
        raise ValueError(f"--systems entry must be 'baseline', 'stk:R', 'atk:R' or 'matk:R' (optionally "
                         f"followed by ,--flag=value), got {spec!r}")
    try:
        k_ratio = float(ratio)
    except ValueError:
        raise ValueError(f"--systems entry {spec!r}: k ratio {ratio!r} is not a number") from None
    if not 0 < k_ratio <= 1:
        raise ValueError(f"--systems entry {spec!r}: k ratio must be in (0, 1], got {k_ratio}")
    flags = []
    for part in flag_parts:
        if not part.startswith("--"):
            raise ValueError(f"--systems entry {spec!r}: extra flag {part!r} must look like --stk-flag=value")
        flags += part.split("=", 1)
    return System(spec, "stk", name, k_ratio, tuple(flags))


# ---- one run ------------------------------------------------------------------------------------
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
    }
    result["key"] = key
    write_json(result_path, result, indent=1)  # the completion record
    # The checkpoint is not needed after the result (disk); a later change of the generate or analysis
    # settings then retrains the run (--keep-checkpoints: it only decodes or analyses again).
    if config["delete_checkpoints"]:
        for path in run_dir.glob("checkpoint*.pt"):
            path.unlink()
    return result


# ---- the study ----------------------------------------------------------------------------------
def check_systems(config: dict, specs: list[str]) -> None:
    """Refuses a system whose flags fairseq-train would refuse, before anything is recorded."""
    train_args = [*RECIPES[config["recipe"]].args, *config["fairseq_args"]]
    for system in map(parse_system, specs):
        check_system(system.spec, system.criterion_args(config["label_smoothing"], config["stk_args"]), train_args)


def claim(work: Path, config: dict) -> None:
    path = work / CONFIG
    if path.is_file():
        old = read_json(path)
        for key in FIXED_KEYS:
            # Before any run has finished nothing can become incomparable: a study that failed at
            # its first run is corrected by running it again with other settings (partial runs
            # retrain, as their run keys no longer match).
            if old.get(key) != config.get(key) and not any(work.glob("runs/*/*/result.json")):
                log(f"{key}={old.get(key)!r} -> {config.get(key)!r}: no run has finished yet, the new setting "
                    f"replaces the old one in {path}")
            elif old.get(key) != config.get(key):
                raise ValueError(f"--work {work} holds a study run with {key}={old.get(key)!r}, this one has "
                                 f"{key}={config.get(key)!r}: runs would not be comparable; use another --work")
        old_systems = []
        for spec in old.get("systems", []):
            try:  # an older version recorded systems before checking their flags
                check_systems(config, [spec])
                old_systems.append(spec)
            except ValueError as error:
                log(f"dropped {spec!r} from the grid of {path}: {error}")
        old_grid = (old_systems, old.get("seeds", []))
        config["systems"] = list(dict.fromkeys(old_grid[0] + config["systems"]))
        config["seeds"] = sorted(set(old_grid[1]) | set(config["seeds"]))
    work.mkdir(parents=True, exist_ok=True)
    write_json(path, config, indent=1)


def run_study(config: dict, records: Path | None = None, write_report: bool = True) -> dict | None:
    """Every (system, seed) of the study, seed-major; with `records`, each finished run is packed there.

    Holds WORK's lock until the study ends (its fairseq children die with it): a second study on
    WORK would train the same runs in the same folders."""
    with locked_folder(Path(config["work"]), "study run"):
        return run_systems(config, records, write_report)


def run_systems(config: dict, records: Path | None = None, write_report: bool = True) -> dict | None:
    work = Path(config["work"])
    check_systems(config, config["systems"])
    claim(work, config)
    corpus = PreparedCorpus.load(Path(config["data"]))
    hashes = corpus_hashes(corpus)
    if records is not None:
        write_corpus_record(records, read_json(work / CONFIG), corpus)
    systems = [parse_system(s) for s in config["systems"]]
    # Seed-major: an interrupted study has every system for its first seeds (matched comparisons).
    grid = [(system, seed) for seed in config["seeds"] for system in systems]
    runs = []
    for i, (system, seed) in enumerate(grid, 1):
        run_dir = work / "runs" / system.id / f"seed{seed}"
        state = "finished" if (run_dir / "result.json").is_file() else "to run"
        log(f"run {i}/{len(grid)}: {system.label}, seed {seed} ({state})")
        key = run_key(config, system.criterion_args(config["label_smoothing"], config["stk_args"]), seed, hashes,
                      corpus.config)
        result = run_one(config, system, seed, corpus, run_dir, key)
        log(f"run {i}/{len(grid)}: BLEU {result['bleu']:.2f} chrF {result['chrf']:.2f} "
            f"len ratio {result['length_ratio']:.3f} ({result['seconds']:.0f} s)")
        result["run_dir"] = str(run_dir.relative_to(work))
        runs.append(result)
        if records is not None and pack_run(records, system.id, seed, run_dir):
            log(f"record of {system.label} seed {seed} packed into {records}")
    return report(work, config, corpus, runs, planned=len(grid)) if write_report else None


def planned_runs(config: dict) -> int:
    """Systems x seeds of the whole plan (a grid runs one seed at a time but plans all of them)."""
    seeds = set(config["seeds"]) | set(config.get("planned_seeds", []))
    return len(config["systems"]) * len(seeds)


def report_finished(work: Path, corpus=None) -> dict:
    """The report of the runs finished so far (a study still running or stopped early); `corpus` (a
    study_records.RecordedCorpus) stands in for the prepared data when the work folder came from records."""
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


def report(work: Path, config: dict, corpus: PreparedCorpus, runs: list[dict], planned: int | None = None) -> dict:
    """study.json, report.md and img/*.png from the finished runs."""
    from .study_report import figures, markdown

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
                score = {(r["system"], r["seed"]): r for r in runs}
                # The verdict's test: per-seed corpus-level differences, paired t-test over seeds.
                entry["seed_test"] = {name: seed_test([score[(spec, s)][key] - score[(base, s)][key] for s in seeds])
                                      for name, key in (("BLEU", "bleu"), ("chrF", "chrf"))}
                entry["length_ratio_delta"] = seed_test([score[(spec, s)]["length_ratio"] - score[(base, s)]["length_ratio"]
                                                         for s in seeds])
                for name in ("BLEU", "chrF"):  # secondary: the two-level bootstrap (study_stats)
                    result = seed_sentence_bootstrap([hyps[(spec, s)] for s in seeds], [hyps[(base, s)] for s in seeds],
                                                     references, name, lowercase, target_lang,
                                                     config["bootstrap_samples"])
                    entry[f"test_{name}"] = asdict(result)
        summary[spec] = entry
    # Holm over this study's comparisons (a page recomputes it over all of its studies).
    holm_verdicts([t for e in summary.values() for t in e.get("seed_test", {}).values()])
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


def compose_page(studies: list[Path], out: Path, title: str, intro: str = "",
                 prepare_commands: list[str] = ()) -> str:
    """One page from several studies (finished or in progress); figures are copied to OUT's img/ folder."""
    from .study_report import INTRO, markdown, page_conclusion

    out = Path(out)
    loaded = []
    for work in studies:
        study = read_json(Path(work) / "study.json")
        name = study["config"]["name"]
        img_dir = out.parent / "img"
        img_dir.mkdir(parents=True, exist_ok=True)
        for key, rel in study["figures"].items():
            target = img_dir / f"study-{name}-{Path(rel).name}"
            shutil.copyfile(Path(work) / rel, target)
            study["figures"][key] = str(target.relative_to(out.parent))
        loaded.append(study)
    commands = ["## Reproduce", "", "Run each study (resumable: re-run the same command after an interruption; "
                "it keeps every finished run; the grid prepares a missing catalog corpus itself), then compose "
                "this page:", "", "```"]
    commands += list(prepare_commands) + list(dict.fromkeys(s["config"]["command"] for s in loaded))
    commands += ["python -m stk_nmt.translation.study " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["page"]
                 else "python -m stk_nmt.translation.study page --studies ... --out " + str(out), "```", ""]
    conclusion = page_conclusion(loaded)  # Holm over every comparison of the page, before the sections
    sections = [markdown(study, image_prefix="", heading="##") for study in loaded]
    text = "\n".join([f"# {title}\n", (intro or INTRO).strip() + "\n", conclusion, *commands, *sections])
    atomic_write_text(out, text)
    log(f"wrote {out}")
    return text


def main(argv: list[str] | None = None) -> dict | str:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="Arguments after -- go to fairseq-train unchanged (run).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train, evaluate and test the grid (resumable)")
    run.add_argument("--data", type=Path, required=True, help="a directory made by a prepare script")
    run.add_argument("--work", type=Path, required=True, help="where runs, study.json, report.md, img/ go")
    run.add_argument("--name", help="short name of this study (figure file names); default: WORK's name")
    run.add_argument("--preset", choices=sorted(PRESETS),
                     help="a named study: recipe, update budget and (unless given) systems and seeds")
    run.add_argument("--systems", nargs="+", help="default: the preset's, else baseline stk:0.96 stk:0.9 stk:0.8")
    run.add_argument("--seeds", type=int, nargs="+", help="default: the preset's, else 1 2 3")
    run.add_argument("--recipe", choices=sorted(RECIPES), help="default: the preset's, else demo")
    run.add_argument("--max-update", type=int, help="the update budget of every run (required without --preset)")
    run.add_argument("--records", type=Path, help="pack each finished run's record into this folder")
    run.add_argument("--label-smoothing", type=float, default=0.1)
    run.add_argument("--stk-args", default="", help="extra --stk-* flags for every non-baseline system")
    run.add_argument("--fairseq-args", default="", help="extra fairseq-train flags, e.g. '--fp16' or '--cpu'")
    run.add_argument("--generate-args", default="", help="extra fairseq-generate flags, e.g. '--fp16'")
    run.add_argument("--beam", type=int, default=5)
    run.add_argument("--log-interval", type=int, default=10, help="updates between logged lam/kth_loss values")
    run.add_argument("--bootstrap-samples", type=int, default=1000)
    run.add_argument("--analysis-sentences", type=int, default=500, help="valid sentences for the lam analysis")
    run.add_argument("--keep-checkpoints", action="store_true",
                     help="keep each run's checkpoints (a later change of --generate-args or --analysis-sentences "
                          "then decodes or analyses again instead of retraining)")
    add_fairseq_train_args(run)
    grid = sub.add_parser("grid", help="a preset over several catalog pairs, seed by seed, records packed")
    grid.add_argument("--preset", required=True, choices=sorted(PRESETS))
    grid.add_argument("--data-root", type=Path, required=True, help="catalog corpora: DATA_ROOT/catalogs.en-<pair>")
    grid.add_argument("--work-root", type=Path, required=True, help="studies: WORK_ROOT/study-<pair>")
    grid.add_argument("--records", type=Path, required=True, help="records: RECORDS/<pair>/")
    grid.add_argument("--pairs", nargs="+", help="catalog target languages (default: the preset's)")
    grid.add_argument("--seeds", type=int, nargs="+", help="default: the preset's")
    rep = sub.add_parser("report", help="report the runs finished so far (marked partial when incomplete)")
    rep.add_argument("--work", type=Path, required=True)
    page = sub.add_parser("page", help="compose finished studies into a documentation page")
    page.add_argument("--studies", type=Path, nargs="+", help="study work folders (with study.json)")
    page.add_argument("--records", type=Path, nargs="+", help="committed records folders (study_records.py)")
    page.add_argument("--out", type=Path, required=True)
    page.add_argument("--title", default="Does ST_k help translation? A seeded study")
    page.add_argument("--intro", type=Path, help="a markdown file replacing the standard introduction")
    page.add_argument("--prepare-command", action="append", default=[],
                      help="a data preparation command to list under Reproduce (repeatable)")
    args = parser.parse_args(attach_flag_values(argv, ("--stk-args", "--fairseq-args", "--generate-args")))
    if args.command == "report":
        return report_finished(args.work)
    if args.command == "page":
        intro = args.intro.read_text(encoding="utf-8") if args.intro else ""
        if bool(args.studies) == bool(args.records):
            parser.error("page needs --studies or --records (one of them)")
        if args.studies:
            return compose_page(args.studies, args.out, args.title, intro, args.prepare_command)
        with tempfile.TemporaryDirectory(prefix="study-records-") as scratch:
            return compose_page(studies_from_records(args.records, Path(scratch)), args.out, args.title, intro,
                                args.prepare_command)
    if args.command == "grid":
        return run_grid(PRESETS[args.preset], args.preset, args.data_root, args.work_root, args.records,
                        args.pairs, args.seeds, argv)
    preset = PRESETS.get(args.preset)
    args.systems = args.systems or (list(preset.systems) if preset else ["baseline", "stk:0.96", "stk:0.9", "stk:0.8"])
    args.seeds = args.seeds or (list(preset.seeds) if preset else [1, 2, 3])
    args.recipe = args.recipe or (preset.recipe if preset else "demo")
    if args.max_update is None:
        if preset is None:
            parser.error("run needs --max-update (or a --preset)")
        args.max_update = preset.max_update
    extra = fairseq_train_args(run, args, argv)
    for name in ("max_update", "beam", "bootstrap_samples", "log_interval"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.seeds:
        raise ValueError("--seeds needs at least one seed")
    for spec in args.systems:
        parse_system(spec)  # fail before any work
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small models: one thread each (see demo.py)
    config = {
        "name": args.name or args.work.name, "data": str(args.data), "work": str(args.work),
        "systems": args.systems, "seeds": args.seeds, "recipe": args.recipe, "max_update": args.max_update,
        "label_smoothing": args.label_smoothing, "stk_args": shlex.split(args.stk_args),
        "fairseq_args": shlex.split(args.fairseq_args) + extra, "generate_args": shlex.split(args.generate_args),
        "beam": args.beam, "log_interval": args.log_interval, "bootstrap_samples": args.bootstrap_samples,
        "analysis_sentences": args.analysis_sentences, "delete_checkpoints": not args.keep_checkpoints,
        "command": "python -m stk_nmt.translation.study " + shlex.join(argv), "preset": args.preset,
    }
    return run_study(config, records=args.records)


def studies_from_records(records: list[Path], scratch: Path) -> list[Path]:
    """Work folders rebuilt from committed records, each reported (study.json) for compose_page."""
    works = []
    for folder in records:
        work = Path(scratch) / Path(folder).name
        if work.exists():
            shutil.rmtree(work)  # rebuilt from the records every time: nothing stale
        config, corpus = unpack_study(folder, work)
        if (work / "runs").is_dir():
            report_finished(work, corpus)
        else:  # nothing finished yet: the page still shows the study's plan and status
            write_json(work / "study.json", {
                "config": config, "corpus": {"root": str(corpus.root), "manifest": corpus.manifest,
                                             "test_sentences": len(corpus.references("test")),
                                             **({"catalogs": read_json(work / "catalogs.json")}
                                                if (work / "catalogs.json").is_file() else {})},
                "systems": {}, "runs": [], "figures": {}, "planned_runs": planned_runs(config)})
        works.append(work)
    return works


def grid_config(preset: Preset, preset_name: str, pair: str, data: Path, work: Path, seed: int,
                planned_seeds: list[int], argv: list[str]) -> dict:
    """One pair's study configuration as `run --preset` builds it, with the seed the grid runs now."""
    return {
        "name": pair, "data": str(data), "work": str(work), "systems": list(preset.systems),
        "seeds": [seed], "planned_seeds": list(planned_seeds), "recipe": preset.recipe,
        "max_update": preset.max_update, "label_smoothing": 0.1, "stk_args": [], "fairseq_args": [],
        "generate_args": [], "beam": 5, "log_interval": 10, "bootstrap_samples": 1000, "analysis_sentences": 500,
        "delete_checkpoints": True,
        # The command that makes (and resumes) this study: the grid's own.
        "command": "python -m stk_nmt.translation.study " + shlex.join(argv), "preset": preset_name,
    }


def run_grid(preset: Preset, preset_name: str, data_root: Path, work_root: Path, records: Path,
             pairs: list[str] | None, seeds: list[int] | None, argv: list[str]) -> None:
    """The preset on every pair, seed-major across pairs; resumable (finished runs are kept)."""
    from ..data import catalogs

    pairs, seeds = list(pairs or preset.pairs), list(seeds or preset.seeds)
    if "de" in pairs:
        raise ValueError("--pairs: German (de) is kept out of the study (it is the paper's tuning language)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    places = {pair: (Path(data_root) / f"catalogs.en-{pair}", Path(work_root) / f"study-{pair}") for pair in pairs}
    for pair, (data, work) in places.items():
        if not (data / "data-bin").is_dir():
            log(f"preparing the en-{pair} catalog corpus in {data}")
            catalogs.main(["--target-lang", pair, "--out", str(data), *preset.catalog_args])
        # Every pair's plan is on record from the start (the page shows what is planned and not finished).
        config = grid_config(preset, preset_name, pair, data, work, seeds[0], seeds, argv)
        claim(work, config)
        corpus = PreparedCorpus.load(data)
        check_same_corpus(Path(records) / pair, corpus)
        # Runs finished elsewhere (a fresh clone's committed records) are not trained again.
        for run_dir in restore_runs(Path(records) / pair, work):
            log(f"restored the recorded run {run_dir} from {Path(records) / pair}")
        write_corpus_record(Path(records) / pair, read_json(work / CONFIG), corpus)
    for seed in seeds:
        for pair, (data, work) in places.items():
            log(f"grid: seed {seed} on en-{pair}")
            config = grid_config(preset, preset_name, pair, data, work, seed, seeds, argv)
            run_study(config, records=Path(records) / pair, write_report=False)
    log("grid finished")


if __name__ == "__main__":
    main()
