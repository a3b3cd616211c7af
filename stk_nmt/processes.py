"""Child processes (fairseq-train, fairseq-preprocess, ...) that never outlive the command.

Standard library only. On Linux each child asks the kernel (prctl PR_SET_PDEATHSIG) to be
sent SIGKILL when its parent dies, so even `kill -9` of the parent ends the child; an
exception in the parent (Ctrl-C, SystemExit from a SIGTERM handler) kills and reaps it too.
Fairseq's own helpers (multiprocessing pool workers, data loader workers) exit when their
parent, the fairseq child, is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from .files import atomic_write_text

_PR_SET_PDEATHSIG = 1
# Looked up once here: between fork and exec the child should do as little as possible (no
# dlopen, whose lock another thread of the parent may have held at the fork).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(125)
        # The parent may have died between fork and prctl: then nobody would kill us.
        if os.getppid() != parent_pid:
            os._exit(125)

    return preexec


def die_with_parent(parent_pid: int) -> None:
    """Called in a child started by other means than popen (a multiprocessing pool worker, from its
    initializer): on Linux, the kernel kills this process when parent_pid dies, however it dies (a
    pool's workers otherwise outlive a killed parent, idle, for good). Exits at once if parent_pid
    is already gone. The pool must be started from parent_pid's main thread: the signal follows the
    thread that created the child."""
    if sys.platform.startswith("linux"):
        _die_with(parent_pid)()


def popen(command: Sequence[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen whose child is killed when this process dies (Linux), however it dies."""
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _die_with(os.getpid())
    return subprocess.Popen(list(command), **kwargs)


def run_child(command: Sequence[str], on_line: Callable[[str], None] | None = None,
              env: dict[str, str] | None = None, pass_fds: Sequence[int] = (),
              merge_stderr: bool = True, cwd: str | os.PathLike | None = None) -> tuple[int, str, str]:
    """Runs command; returns (exit code, stdout, stderr).

    merge_stderr=True sends stderr into stdout and calls on_line(line) for each line as it comes;
    otherwise both are captured. If this process is interrupted while the child runs, the child
    is killed and reaped before the exception propagates."""
    process = popen(command, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True, env=env,
                    bufsize=1, pass_fds=tuple(pass_fds), cwd=cwd)
    try:
        hold_point(f"child:{command[2] if command[1:2] == ['-m'] else Path(command[0]).name}",
                   child_pid=process.pid)
        if not merge_stderr:
            stdout, stderr = process.communicate()
            return process.returncode, stdout, stderr
        lines = []
        for line in process.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        process.wait()
        return process.returncode, "".join(lines), ""
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# Tests kill a command at chosen points: with STK_NMT_HOLD_AT=<point> in the environment, the
# command writes "<pid> <child pid>" to STK_NMT_HOLD_FILE on reaching that point and waits there
# to be killed. Points: "stage:<name>" (a prepare stage built, not yet renamed into place),
# "child:<module>" (a child such as fairseq_cli.train started), "copy:<file>" (fairseq copying a
# saved checkpoint to <file>, the copy written but not yet renamed into place).
HOLD_AT, HOLD_FILE = "STK_NMT_HOLD_AT", "STK_NMT_HOLD_FILE"


def hold_point(name: str, child_pid: int | None = None) -> None:
    if os.environ.get(HOLD_AT) != name:
        return
    atomic_write_text(os.environ[HOLD_FILE], f"{os.getpid()} {child_pid or ''}\n")
    while True:
        time.sleep(60)
