"""Does ST_k help translation? A seeded study: systems x seeds, trained alike, evaluated, and tested.

    python -m stk_nmt.translation.study run|grid|report|page ...     (__main__.py; cli.py says what each does)

One module per concept:
    cli.py        the command line
    systems.py    what is compared: `baseline`, `stk:R`, `atk:R`, `matk:R`, extra flags; checked by fairseq's parser
    presets.py    named studies (`--preset`) and a grid pair's configuration
    config.py     WORK/study-config.json: what makes runs comparable, the plan
    run.py        one (system, seed): train or resume, evaluate, analyse; result.json last
    integrity.py  run keys: a finished run is kept while everything that shaped it holds
    grid.py       a study on one corpus (seed-major, one at a time per WORK), a preset over several pairs
    report.py     WORK/study.json, report.md and img/ from the finished runs
    stats.py      the seed-level t-test that gives the verdicts, Holm, the secondary bootstraps
    tokens.py     which target tokens fall below lam; the training log's lam and loss curves
    render.py     figures and markdown of a study and of a page
    page.py       a documentation page from several studies or their committed records
    records.py    the committed records (RECORDS/corpus.json, runs/*.tar.xz) a fresh clone re-renders from
    progress.py   the progress lines every step prints
"""

from .cli import main

__all__ = ["main"]
