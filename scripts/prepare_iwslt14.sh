#!/usr/bin/env bash
# IWSLT2014 de-en -> data/iwslt14.de-en (see docs/translation.md). Extra arguments are passed on,
# e.g. --archive path/to/de-en.tgz on a machine without internet access.
set -euo pipefail
. "$(dirname "$0")/_python.sh"
exec "$PYTHON" -m stk_nmt.data.iwslt14 --out "${OUT:-data/iwslt14.de-en}" "$@"
