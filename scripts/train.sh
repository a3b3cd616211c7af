#!/usr/bin/env bash
# usage: scripts/train.sh RECIPE DATA SAVE_DIR CRITERION [recipe options] [-- fairseq-train args]
# e.g.   scripts/train.sh iwslt14 data/iwslt14.de-en checkpoints/iwslt14-stk stk
set -euo pipefail
. "$(dirname "$0")/_python.sh"
recipe="${1:?usage: $0 RECIPE DATA SAVE_DIR CRITERION [options]}"; data="${2:?DATA}"; save="${3:?SAVE_DIR}"; criterion="${4:?CRITERION}"
shift 4
exec "$PYTHON" -m stk_nmt.translation.recipes --recipe "$recipe" --data "$data" --save-dir "$save" --criterion "$criterion" "$@"
