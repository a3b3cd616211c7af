#!/usr/bin/env bash
# usage: scripts/evaluate_bleu.sh DATA CHECKPOINT [COMPARE_CHECKPOINT] [options]
# Detokenised sacreBLEU/chrF with signatures; with a second checkpoint, the paired bootstrap test.
set -euo pipefail
. "$(dirname "$0")/_python.sh"
data="${1:?usage: $0 DATA CHECKPOINT [COMPARE_CHECKPOINT] [options]}"; checkpoint="${2:?CHECKPOINT}"
shift 2
compare=()
if [[ $# -gt 0 && "$1" != --* ]]; then compare=(--compare "$1"); shift; fi
# The "+" form expands an empty compare to nothing; the plain quoted form fails under set -u on bash 3.2.
exec "$PYTHON" -m stk_nmt.translation.evaluate --data "$data" --checkpoint "$checkpoint" ${compare[@]+"${compare[@]}"} "$@"
