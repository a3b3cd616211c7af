#!/usr/bin/env bash
# WMT2017 en-de or zh-en -> data/wmt17.<pair> (see docs/translation.md).
# usage: scripts/prepare_wmt17.sh en-de|zh-en [--archives-dir DIR] [--extra-train SRC TGT] ...
set -euo pipefail
. "$(dirname "$0")/_python.sh"
pair="${1:?usage: $0 en-de|zh-en [options]}"
shift
exec "$PYTHON" -m stk_nmt.data.wmt17 --pair "$pair" --out "${OUT:-data/wmt17.$pair}" "$@"
