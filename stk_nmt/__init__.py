"""stk_nmt: STk loss aggregation and top-K hinge losses for PyTorch, and a fairseq --user-dir plugin.

`import stk_nmt` and `import stk_nmt.core` never import fairseq. The criteria are registered with
fairseq (and fairseq checkpoints made loadable under torch >= 2.6, its checkpoint copies atomic: see
stk_nmt/fairseq_compat.py) as soon as both packages are loaded, whichever comes first:
- fairseq first (fairseq-train --user-dir stk_nmt, or `import fairseq; import stk_nmt`): here;
- stk_nmt first (`import stk_nmt; import fairseq`, or a program that used stk_nmt.core before
  running fairseq's CLI in-process): right after fairseq's own import finishes, through a one-shot
  import hook. fairseq's --user-dir import then finds stk_nmt already loaded and skips it, which is
  why registering only at package import depended on the order.
`import stk_nmt.criterions` registers explicitly (it imports fairseq).
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def register_with_fairseq() -> None:
    """Registers the criteria with fairseq and applies the checkpoint fixes (idempotent)."""
    from .fairseq_compat import allow_fairseq_checkpoints, make_checkpoint_copies_atomic

    allow_fairseq_checkpoints()
    make_checkpoint_copies_atomic()
    from . import criterions  # noqa: F401  (importing them registers the criteria)


class _RegisterAfterFairseqImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `fairseq` is about to be imported, it wraps that module's
    exec_module so that register_with_fairseq() runs once fairseq is fully initialised."""

    def find_spec(self, name, path=None, target=None):
        if name != "fairseq":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from finding us again
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register_with_fairseq()

        spec.loader.exec_module = exec_then_register  # this spec's own loader instance only
        return spec


if "fairseq" in sys.modules:
    register_with_fairseq()
elif not any(isinstance(finder, _RegisterAfterFairseqImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterFairseqImport())
