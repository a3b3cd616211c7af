"""Does ST_k help translation? A grid of systems x seeds, trained alike, evaluated, and tested.

    python -m stk_nmt.translation.study run --data data/catalogs.en-fr --work work/study-fr \
        --systems baseline stk:0.96 stk:0.9 stk:0.8 --seeds 1 2 3 --max-update 400 \
        [--recipe demo] [--beam 5] [--stk-args "--stk-delta 0.01"] [--fairseq-args "--fp16"] [-- ...]
    python -m stk_nmt.translation.study page --studies work/study-fr work/study-es --out docs/study.md
    python -m stk_nmt.translation.study grid --preset catalogs --data-root work/data --work-root work \
        --records docs/study-runs [--pairs fr es it] [--seeds 1 2 3 4 5]
    python -m stk_nmt.translation.study rerun --preset catalogs --data-root work/data --work-root work \
        --records docs/study-runs --pair fr --system baseline --seed 4
    python -m stk_nmt.translation.study page --records docs/study-runs/fr docs/study-runs/es --out docs/study.md

`run` trains every (system, seed) with the same recipe and update budget (fairseq-train, resumed from
checkpoint_last.pt when a run was interrupted), translates the test set with the existing
evaluation (detokenised sacreBLEU and chrF with signatures), measures which target tokens of the
validation set fall below the final lam, and writes RUN/result.json atomically as the last step:
a run with result.json is finished, so a killed study continues where it stopped. A finished run is
kept while its key holds: the data's hashes, the system's flags, the generate arguments and the
analysis settings (integrity.py); a changed key retrains, decodes again or repeats the
analysis, as far as the change reaches, and says so. One `study run` at a time per WORK (a second is
refused). It then writes WORK/study.json (every run), WORK/report.md (tables) and WORK/img/*.png.
`page` composes one or more studies into a documentation page (figures copied next to it).

Systems: `baseline` (label_smoothed_cross_entropy), `stk:R` (ST_k at k/n = R), `atk:R` (AT_k, the
exact mean of the k largest), any other registered aggregate (`matk:R`; `maximum`, which takes no k)
and `NAME[:R],--flag=value,...` for extra --stk-* flags of one system;
--stk-args apply to every non-baseline system. Every system uses label smoothing 0.1. The
checkpoint evaluated is checkpoint_last.pt (same number of updates for all; no selection on a
validation loss that differs between criteria). Device and precision flags go to fairseq
unchanged: --fairseq-args "--fp16" or anything after --; without --cpu fairseq uses a GPU if
it has one.

`--preset NAME` (PRESETS) sets the recipe, the update budget and, unless given, the systems and seeds
of a named study. `grid` runs a preset over several catalog pairs (preparing a missing corpus first),
ordered seed by seed: all systems of seed 1 on every pair, then seed 2, ... so that an interrupted grid
leaves whole matched seeds; each finished run is packed into RECORDS/<pair>/ (records.py), from
which `page --records` re-renders the page in a fresh clone. Re-running the same command resumes.
`rerun` trains one recorded grid run again with the grid's settings (same run key), typically on
another machine, and records it in RECORDS/<pair>/reruns/; the page sets it beside the grid's run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from ...cli import prog_name
from ..fairseq_run import add_fairseq_train_args, attach_flag_values, fairseq_train_args
from ..recipes import RECIPES
from .grid import run_grid, run_rerun, run_study
from .page import compose_page, studies_from_records
from .presets import PRESETS
from .report import report_finished
from .systems import parse_system


def main(argv: list[str] | None = None) -> dict | str:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A package's `python -m` runs __main__.py: argparse would name that file, not the command.
    parser = argparse.ArgumentParser(prog=prog_name("stk_nmt.translation.study"),
                                     description=__doc__.split("\n")[0],
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
    rerun = sub.add_parser("rerun", help="train one recorded grid run again with the same settings (elsewhere: "
                                          "how far a run moves with nothing changed); recorded apart")
    rerun.add_argument("--preset", required=True, choices=sorted(PRESETS))
    rerun.add_argument("--data-root", type=Path, required=True, help="as the grid's")
    rerun.add_argument("--work-root", type=Path, required=True, help="as the grid's (the rerun trains in "
                                                                    "WORK_ROOT/study-<pair>/reruns/)")
    rerun.add_argument("--records", type=Path, required=True, help="as the grid's (packed into RECORDS/<pair>/reruns/)")
    rerun.add_argument("--pair", required=True, help="catalog target language, e.g. fr")
    rerun.add_argument("--system", required=True, help="a system of the preset, e.g. baseline or stk:0.96")
    rerun.add_argument("--seed", type=int, required=True)
    rep = sub.add_parser("report", help="report the runs finished so far (marked partial when incomplete)")
    rep.add_argument("--work", type=Path, required=True)
    page = sub.add_parser("page", help="compose finished studies into a documentation page")
    page.add_argument("--studies", type=Path, nargs="+", help="study work folders (with study.json)")
    page.add_argument("--records", type=Path, nargs="+", help="committed records folders (records.py)")
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
    if args.command == "rerun":
        return run_rerun(PRESETS[args.preset], args.preset, args.data_root, args.work_root, args.records,
                         args.pair, args.system, args.seed, argv)
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
