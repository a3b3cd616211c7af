"""Translation workflow around fairseq: training recipes, sacreBLEU evaluation, the demo.

Run as CLIs (python -m stk_nmt.translation.recipes / .evaluate / .demo); fairseq runs in
subprocesses (`sys.executable -m fairseq_cli.*`), so nothing here is imported by the plugin.
"""

from ..extras import require_extra

require_extra("translation", "stk_nmt.translation")  # before any submodule imports them
