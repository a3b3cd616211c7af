"""Regenerate docs/results.md and docs/img/*.png: run every example, then write the page.

    python examples/make_results.py                    # quick mode, results in results/quick (~10 min, 2 cores)
    python examples/make_results.py --mode full        # the paper's protocol (hours, see the page)
    python examples/make_results.py --no-run           # re-render from results already in --out

Examples run in this process, one after the other, with the same --seed; a rerun resumes the
tabular tables from their finished cells.
"""

import importlib.util
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stk_nmt.experiments.cli import base_parser, start  # noqa: E402
from stk_nmt.experiments.files import atomic_write_text, read_json, write_json  # noqa: E402
from stk_nmt.experiments.report import render_page  # noqa: E402

EXAMPLES = ("synthetic_2d", "imbalance_sweep", "binary_classification", "regression", "timing")


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> Path:
    parser = base_parser(__doc__)
    parser.set_defaults(out=None)
    parser.add_argument("--no-run", action="store_true", help="only re-render the page from existing results")
    parser.add_argument("--only", nargs="+", choices=EXAMPLES, default=list(EXAMPLES), help="examples to run")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="where results.md and img/ go (default docs/)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(ROOT / "results" / args.mode)
    out = start(args)
    runtimes_path = out / "runtimes.json"
    runtimes = read_json(runtimes_path) if runtimes_path.is_file() else {}
    if not args.no_run:
        for name in args.only:
            print(f"\n=== {name} ({args.mode}) ===", flush=True)
            t0 = time.perf_counter()
            load_example(name).main(["--mode", args.mode, "--seed", str(args.seed), "--out", str(out)])
            runtimes[name] = time.perf_counter() - t0
            write_json(runtimes_path, runtimes)
    results = {name: read_json(out / f"{name}.json") for name in EXAMPLES if (out / f"{name}.json").is_file()}
    if not results:
        raise FileNotFoundError(f"no example results in --out={str(out)!r}: run without --no-run first")
    docs = Path(args.docs)
    (docs / "img").mkdir(parents=True, exist_ok=True)
    for name in results:
        shutil.copyfile(out / f"{name}.png", docs / "img" / f"{name}.png")
    page = docs / "results.md"
    atomic_write_text(page, render_page(results, runtimes, args.mode, args.seed))
    print(f"wrote {page} and {len(results)} figures in {docs / 'img'}")
    return page


if __name__ == "__main__":
    main()
