"""`python -m stk_nmt.translation.study`: the study's command line (cli.py)."""

from .cli import main

main()
