"""Running fairseq CLIs as subprocesses of the current interpreter, with the plugin loaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import stk_nmt

# The package directory is the fairseq --user-dir: importing it registers the criteria.
USER_DIR = str(Path(stk_nmt.__file__).resolve().parent)


def fairseq_command(tool: str, *args: str) -> list[str]:
    """[python, -m, fairseq_cli.<tool>, ...]: no reliance on console scripts being on PATH."""
    return [sys.executable, "-m", f"fairseq_cli.{tool}", *args]


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
                show: Callable[[str], bool] | None = None) -> str:
    """Runs a fairseq CLI and returns its stdout.

    stream=True merges stderr (fairseq's logging and progress) into stdout and prints it line by
    line as it comes (training); otherwise both are captured. log_path keeps a copy of the log.
    A failure raises RuntimeError with the end of the log."""
    command = fairseq_command(tool, *args)
    if stream:
        lines = []
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=fairseq_env(), bufsize=1) as process:
            for line in process.stdout:
                lines.append(line)
                if show is None or show(line):
                    print(line, end="", flush=True)
        stdout, log_text = "".join(lines), "".join(lines)
        returncode = process.returncode
    else:
        result = subprocess.run(command, capture_output=True, text=True, env=fairseq_env())
        stdout, log_text, returncode = result.stdout, result.stderr, result.returncode
    if log_path is not None:
        Path(log_path).write_text(log_text, encoding="utf-8")
    if returncode != 0:
        tail = "\n".join(log_text.splitlines()[-40:])
        raise RuntimeError(f"{' '.join(command)} failed with exit code {returncode}:\n{tail}")
    return stdout
