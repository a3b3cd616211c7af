"""`python -m stk_nmt COMMAND ...` runs the `stk-nmt` console command (stk_nmt/cli.py)."""

import sys

from .cli import main

sys.exit(main())
