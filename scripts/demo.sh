#!/usr/bin/env bash
# The demo: default corpus -> label_smoothed_cross_entropy vs stk -> sacreBLEU table (run time: see README).
set -euo pipefail
. "$(dirname "$0")/_python.sh"
exec "$PYTHON" -m stk_nmt.translation.demo "$@"
