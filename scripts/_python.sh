# Sourced by the scripts in this folder (not run on its own): sets PYTHON to the interpreter that runs
# the package. $PYTHON when set; else the project's .venv (made by `make setup`); else python3 on PATH.
# Written for bash 3.2 too (macOS): no arrays expanded under set -u, no bash 4 syntax.
_stk_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$_stk_root/.venv/bin/python" ]; then
    PYTHON="$_stk_root/.venv/bin/python"
  else
    PYTHON=python3
  fi
fi
if ! "$PYTHON" -c "import stk_nmt" >/dev/null 2>&1; then
  echo "$(basename "$0"): $PYTHON cannot import stk_nmt; run 'make setup' in $_stk_root," \
       "or set PYTHON to an interpreter where stk-nmt is installed" >&2
  exit 1
fi
