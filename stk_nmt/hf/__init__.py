"""ST_k (and every other aggregate of the core) for the Hugging Face Trainer: `pip install stk-nmt[hf]`.

    from stk_nmt.hf import STkSeq2SeqTrainer, STkSeq2SeqTrainingArguments
    args = STkSeq2SeqTrainingArguments(output_dir="out", label_smoothing_factor=0.1, stk_k_ratio=0.96)
    trainer = STkSeq2SeqTrainer(model=model, args=args, train_dataset=..., data_collator=...)

The token losses (transformers' label smoothing, labels = -100 masked out) are aggregated over each
micro-batch's valid tokens by the core; lam is initialised on the first training batch, stepped by
its own SGD once per optimizer step and saved with the Trainer's checkpoints. docs/hf.md.

The core (stk_nmt.core) never imports this package; this package needs transformers.
"""

import importlib.util
import sys


def _hide_unloadable_torchaudio() -> None:
    """transformers imports torchaudio whenever it is installed; fairseq pulls in a torchaudio built
    for another torch, whose import fails with OSError (not ImportError) and would take transformers
    down with it. Such a torchaudio is marked absent (sys.modules entry None: find_spec then says
    "not installed" and `import torchaudio` raises ImportError), so transformers skips its audio
    helpers, which nothing here uses."""
    if "torchaudio" in sys.modules or importlib.util.find_spec("torchaudio") is None:
        return
    try:
        import torchaudio  # noqa: F401
    except OSError:
        sys.modules["torchaudio"] = None
        # transformers imported before us may already have cached "torchaudio is available".
        import_utils = sys.modules.get("transformers.utils.import_utils")
        cached = getattr(import_utils, "is_torchaudio_available", None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


_hide_unloadable_torchaudio()

from ..extras import require_extra

require_extra("hf", "stk_nmt.hf")

from .arguments import LAM_OPTIMIZERS, STkArguments, STkSeq2SeqTrainingArguments, STkTrainingArguments
from .loss import STkTokenLoss, label_smoothed_token_losses
from .trainer import LAM_FILE, STkSeq2SeqTrainer, STkTrainer, STkTrainerMixin

__all__ = [
    "LAM_FILE", "LAM_OPTIMIZERS", "STkArguments", "STkSeq2SeqTrainer", "STkSeq2SeqTrainingArguments",
    "STkTokenLoss", "STkTrainer", "STkTrainerMixin", "STkTrainingArguments", "label_smoothed_token_losses",
]
