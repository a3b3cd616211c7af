"""Running fairseq CLIs as subprocesses of the current interpreter, with the plugin loaded."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

import stk_nmt
from stk_nmt.processes import run_child

# The package directory is the fairseq --user-dir: importing it registers the criteria.
USER_DIR = str(Path(stk_nmt.__file__).resolve().parent)


def fairseq_command(tool: str, *args: str) -> list[str]:
    """[python, -m, fairseq_cli.<tool>, ...]: no reliance on console scripts being on PATH."""
    return [sys.executable, "-m", f"fairseq_cli.{tool}", *args]


def add_fairseq_train_args(parser: argparse.ArgumentParser) -> None:
    """`... -- ARGS`: ARGS go to fairseq-train unchanged (read them with fairseq_train_args)."""
    # A "*" positional: argparse treats everything after "--" as positional and drops the "--".
    parser.add_argument("after_double_dash", nargs="*", metavar="-- FAIRSEQ_TRAIN_ARGS",
                        help="arguments after -- go to fairseq-train unchanged")


def fairseq_train_args(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str]) -> list[str]:
    """The arguments after --; a stray word before -- stays an error, as for any unknown argument."""
    if args.after_double_dash and "--" not in argv:
        parser.error(f"unrecognized arguments: {' '.join(args.after_double_dash)} (fairseq-train arguments go after --)")
    return list(args.after_double_dash)


def attach_flag_values(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """argv with `OPTION VALUE` written `OPTION=VALUE` for the given options, before any --.

    Their values are flags for another program (--fairseq-args '--cpu'); argparse takes a lone
    value that starts with '-' for an option of its own and refuses it ("expected one argument").
    """
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return out + list(argv[i:])
        if token in options and i + 1 < len(argv) and argv[i + 1] != "--":
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


_TRAIN_INDEX = re.compile(r"^train\.([^.\-]+)-([^.\-]+)\.\1\.idx$")


def language_args(data_bin: Path) -> list[str]:
    """--source-lang/--target-lang of a data-bin, read from its train.SRC-TGT.SRC.idx file.

    Without them fairseq takes the first file name of the form a.b-c.* it lists, which can be the
    pipeline's .stk-stage.json (languages "stk" and "stage"), depending on the directory order."""
    pairs = {m.groups() for p in Path(data_bin).iterdir() if (m := _TRAIN_INDEX.match(p.name))}
    if len(pairs) != 1:
        return []  # none or several pairs: fairseq's own inference (or the user's flags) decide
    source, target = pairs.pop()
    return ["--source-lang", source, "--target-lang", target]


def fairseq_env() -> dict[str, str]:
    env = dict(os.environ)
    # The package's parent must be importable in the child for --user-dir to register criteria
    # under the name stk_nmt (and only that name).
    parent = str(Path(USER_DIR).parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH", "")) if p)
    return env


# fairseq's per-epoch / per-interval progress lines (the model printout and setup logging are
# long: those stay in the log file).
_PROGRESS = re.compile(r"\| (train_inner|train|valid) \||done training|Traceback|Error|error:")


def progress_line(line: str) -> bool:
    return bool(_PROGRESS.search(line))


def run_fairseq(tool: str, args: list[str], log_path: Path | None = None, stream: bool = False,
                show: Callable[[str], bool] | None = None, append_log: bool = False,
                pass_fds: Sequence[int] = ()) -> str:
    """Runs a fairseq CLI and returns its stdout.

    stream=True merges stderr (fairseq's logging and progress) into stdout and prints it line by
    line as it comes (training); otherwise both are captured. log_path gets the log as it comes
    (stream) or at the end, appended to with append_log (a resumed training run). The child
    never outlives this process (stk_nmt/processes.py). A failure raises RuntimeError with the
    end of the log."""
    command = fairseq_command(tool, *args)
    log_file = open(log_path, "a" if append_log else "w", encoding="utf-8") if log_path else None
    try:
        def on_line(line: str) -> None:
            if log_file:
                log_file.write(line)
                log_file.flush()  # so `tail -f train.log` follows the run
            if show is None or show(line):
                print(line, end="", flush=True)

        if stream:
            returncode, stdout, _ = run_child(command, on_line, env=fairseq_env(), pass_fds=pass_fds)
            log_text = stdout
        else:
            returncode, stdout, log_text = run_child(command, env=fairseq_env(), pass_fds=pass_fds,
                                                     merge_stderr=False)
            if log_file:
                log_file.write(log_text)
    finally:
        if log_file:
            log_file.close()
    if returncode != 0:
        tail = "\n".join(log_text.splitlines()[-40:])
        raise RuntimeError(f"{' '.join(command)} failed with exit code {returncode}:\n{tail}")
    return stdout
