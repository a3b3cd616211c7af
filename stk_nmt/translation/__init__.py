"""Translation workflow around fairseq: training recipes, sacreBLEU evaluation, the demo.

Run as CLIs (python -m stk_nmt.translation.recipes / .evaluate / .demo); fairseq runs in
subprocesses (`sys.executable -m fairseq_cli.*`), so nothing here is imported by the plugin.
"""
