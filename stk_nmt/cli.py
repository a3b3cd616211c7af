"""`stk-nmt`: one console command whose subcommands run the package's command-line programs.

    stk-nmt user-dir            the path to pass to fairseq's --user-dir (this installed package)
    stk-nmt evaluate --help     any other subcommand: the `python -m` program listed in COMMANDS

`python -m stk_nmt ...` is the same command, for environments whose scripts folder is not on PATH.
Subcommands import their module only when run, so a missing extra stops that subcommand alone
with the `pip install 'stk-nmt[...]'` line that installs it (stk_nmt/extras.py).
"""

import importlib
import os
import sys
from typing import List, Optional

# subcommand -> (module whose main(argv) runs it, the extra it needs or None, one line of help)
COMMANDS = {
    "prepare-iwslt14": ("stk_nmt.data.iwslt14", "data", "prepare IWSLT2014 de-en"),
    "prepare-wmt17": ("stk_nmt.data.wmt17", "data", "prepare WMT2017 en-de / zh-en"),
    "prepare-own": ("stk_nmt.data.own", "data", "prepare your own parallel files"),
    "prepare-catalogs": ("stk_nmt.data.catalogs", "data", "a parallel corpus from the system's gettext catalogs"),
    "train": ("stk_nmt.translation.recipes", "translation", "train with a recipe (fairseq-train)"),
    "evaluate": ("stk_nmt.translation.evaluate", "translation", "detokenised sacreBLEU / chrF, paired bootstrap"),
    "demo": ("stk_nmt.translation.demo", "translation", "label_smoothed_cross_entropy vs stk on the embedded corpus"),
    "study": ("stk_nmt.translation.study", "translation", "a seeded grid of systems, tested over seeds"),
    "vision-train": ("stk_nmt.vision.train", "vision", "train a long-tail image classifier"),
    "vision-compare": ("stk_nmt.vision.compare", "vision", "average vs AT_k vs ST_k on long-tailed digits"),
    "results": ("stk_nmt.experiments.make_results", "examples", "run the paper's examples, write results.md"),
}


def user_dir() -> str:
    """The absolute path of this stk_nmt package: the one --user-dir spelling that works for every
    kind of install (fairseq resolves a bare `stk_nmt` against the current folder first)."""
    return os.path.dirname(os.path.abspath(__file__))


def prog_name(module: str) -> str:
    """argparse's program name for `module`: the `stk-nmt COMMAND` that runs it, else `python -m module`."""
    return sys.argv[0] if sys.argv[0].startswith("stk-nmt ") else f"python -m {module}"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: stk-nmt COMMAND [ARGS...]    (stk-nmt COMMAND --help for a command's options)",
        "",
        f"  {'user-dir':<{width}}  print the path to pass to fairseq's --user-dir",
    ]
    for name, (module, extra, text) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {text} (python -m {module}; extra: {extra})")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "user-dir":
        if rest:
            print(f"stk-nmt user-dir takes no arguments, got {rest!r}", file=sys.stderr)
            return 2
        print(user_dir())
        return 0
    if command not in COMMANDS:
        print(f"stk-nmt: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name = COMMANDS[command][0]
    from .extras import MissingExtraError

    try:
        module = importlib.import_module(module_name)
    except MissingExtraError as error:
        print(f"stk-nmt {command}: {error}", file=sys.stderr)
        return 1
    sys.argv[0] = f"stk-nmt {command}"  # argparse's usage line names the command the user typed
    module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
