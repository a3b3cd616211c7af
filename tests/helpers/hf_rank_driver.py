"""One rank of a multi-process STkTrainer run (started by `accelerate launch`): a tiny Llama on random
token rows, 4 optimizer steps; writes, per step, the lam used and the batch's k-th largest token loss
on this rank (JSON lines) to OUT_DIR/rank<R>.jsonl.

    accelerate launch --multi_gpu --num_processes 2 hf_rank_driver.py OUT_DIR   (use_cpu=True: gloo)
"""

import json
import sys
from pathlib import Path

from hf_tiny import causal_examples, pad_causal, tiny_llama
from transformers import TrainerCallback

from stk_nmt.hf import STkTrainer, STkTrainingArguments


class StepLog(TrainerCallback):
    def __init__(self):
        self.rows = []

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "stk_lam" in logs:
            self.rows.append({"step": state.global_step, "lam_used": logs["stk_lam"], "kth_loss": logs["stk_kth_loss"]})


def main(out_dir: str) -> None:
    args = STkTrainingArguments(output_dir=out_dir, per_device_train_batch_size=2, learning_rate=1e-2, max_steps=4,
                                logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0, data_seed=0,
                                disable_tqdm=True, remove_unused_columns=False, stk_k_ratio=0.75, stk_lam_lr=0.5,
                                ddp_backend="gloo")
    log = StepLog()
    trainer = STkTrainer(model=tiny_llama(0), args=args, train_dataset=causal_examples(32, seed=9),
                         data_collator=pad_causal, callbacks=[log])
    trainer.train()
    rank = args.process_index
    assert args.world_size == 2, args.world_size
    final = {"step": "final", "lam_stored": trainer.stk_loss.lam.item()}
    Path(out_dir, f"rank{rank}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log.rows + [final]))


if __name__ == "__main__":
    main(sys.argv[1])
