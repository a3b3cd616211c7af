"""Causal-LM fine-tuning with transformers' Trainer, full and LoRA (peft): its own loss against ST_k.

    python examples/hf_causal_lm.py [--corpus catalogs|synthetic] [--target-lang fr] [--size tiny|small] [--out DIR]

A small Llama-style model built from a config (random weights: nothing is downloaded) and a BPE tokenizer
trained here. It is first pre-trained with the plain loss on the target side of the embedded synthetic
corpus, then fine-tuned on other offline text: the target side of the gettext catalogs (--corpus
catalogs, real translations into --target-lang) or held-out synthetic sentences. Four fine-tuning runs
start from the same pre-trained weights and differ only in what they train (every weight, or LoRA
adapters on the attention projections) and in the loss: `baseline` is transformers' Trainer (its own
causal-LM loss), `ST_k` is STkTrainer with stk_k_ratio. The table: held-out token NLL (mean, mean of the
worst 4% of tokens, perplexity). A finished run is reused and a killed one resumes when re-run with the
same --out.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import DataCollatorForLanguageModeling, LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

from stk_nmt.data import synthetic

from .arguments import STkTrainingArguments
from .demo_common import (cached_run, corpus_pairs, example_parser, last_checkpoint, log, print_table, token_statistics,
                          train_tokenizer)
from .trainer import STkTrainer

PRESETS = {
    # seconds on a CPU: the test suite's size
    "tiny": dict(pretrain=200, train=160, valid=32, test=1, vocab=300, hidden=32, layers=1, heads=2, ffn=64,
                 pretrain_steps=8, steps=6, batch=8, lr=3e-3, lora_r=4),
    # minutes on a CPU
    "small": dict(pretrain=20000, train=10000, valid=500, test=1, vocab=4000, hidden=128, layers=2, heads=4, ffn=384,
                  pretrain_steps=1500, steps=1000, batch=32, lr=1e-3, lora_r=8),
}
MAX_LEN = 48
COLUMNS = [("run", "run"), ("trained", "trained parameters"), ("loss", "training objective"), ("nll", "valid NLL"),
           ("tail_nll", "valid NLL, worst 4%"), ("ppl", "valid ppl"), ("lam", "final lam")]


def build_model(tokenizer, preset: dict, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=preset["hidden"], intermediate_size=preset["ffn"],
                         num_hidden_layers=preset["layers"], num_attention_heads=preset["heads"],
                         num_key_value_heads=preset["heads"], max_position_embeddings=MAX_LEN,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config)


def encode(tokenizer, texts):
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [{"input_ids": [bos] + tokenizer(text)["input_ids"][:MAX_LEN - 2] + [eos]} for text in texts]


def training_args(cls, out_dir: Path, steps: int, preset: dict, options, **extra):
    return cls(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=preset["batch"],
               learning_rate=preset["lr"], warmup_steps=max(1, steps // 10), weight_decay=0.0,
               logging_steps=max(1, steps // 6), save_steps=max(1, steps // 2), save_total_limit=1, report_to=[],
               use_cpu=True, seed=options.seed, data_seed=options.seed, disable_tqdm=options.no_progress, **extra)


def pretrain(data, tokenizer, collator, preset, options) -> Path:
    """The shared starting point: the plain loss on the synthetic target side; saved once under --out."""
    out_dir = options.out / "pretrained"
    final = out_dir / "final"
    if (final / "config.json").is_file():
        log(f"[pretrain] done before, loading {final}")
        return final
    model = build_model(tokenizer, preset, options.seed)
    args = training_args(TrainingArguments, out_dir, preset["pretrain_steps"], preset, options)
    log(f"[pretrain] {preset['pretrain_steps']} steps on {len(data['pretrain']):,} synthetic sentences")
    Trainer(model=model, args=args, train_dataset=data["pretrain"], data_collator=collator).train(
        resume_from_checkpoint=last_checkpoint(out_dir))
    model.save_pretrained(final)
    return final


def run_one(name, stk: bool, lora: bool, base: Path, data, collator, preset, options) -> dict:
    out_dir = options.out / name
    model = LlamaForCausalLM.from_pretrained(base)  # a local directory written by pretrain()
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=preset["lora_r"], lora_alpha=2 * preset["lora_r"], lora_dropout=0.0,
                                                 target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if stk:
        args = training_args(STkTrainingArguments, out_dir, preset["steps"], preset, options,
                             stk_k_ratio=options.stk_k_ratio, stk_lam_lr=options.stk_lam_lr)
        trainer = STkTrainer(model=model, args=args, train_dataset=data["train"], data_collator=collator)
    else:
        args = training_args(TrainingArguments, out_dir, preset["steps"], preset, options)
        trainer = Trainer(model=model, args=args, train_dataset=data["train"], data_collator=collator)
    log(f"[{name}] fine-tuning {preset['steps']} steps, {trained:,} trained parameters")
    train = trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    valid = [collator(data["valid"][i:i + 32]) for i in range(0, len(data["valid"]), 32)]
    result = {"run": name, "trained": trained, "loss": train.training_loss,
              **token_statistics(model, valid, shift_labels=True)}
    if stk:
        result["lam"] = trainer.stk_loss.lam.item()
    return result


def main(argv=None) -> list[dict]:
    parser = example_parser(__doc__.split("\n")[0], PRESETS, Path("results/hf_causal_lm"),
                            "the fine-tuning text: the catalogs' target side, or held-out synthetic sentences")
    options = parser.parse_args(argv)
    preset = PRESETS[options.size]
    options.out = options.out / f"{options.corpus}-{options.target_lang}-{options.size}-seed{options.seed}"
    pretrain_text = [t for _, t in synthetic.generate_corpus(options.seed, preset["pretrain"], 1, 1)["train"]]
    # Another seed of the synthetic generator for --corpus synthetic: sentences not seen in pre-training.
    fine = corpus_pairs(options.corpus, preset, options.seed + 1000, options.target_lang)
    texts = {"train": [t for _, t in fine["train"]], "valid": [t for _, t in fine["valid"]]}
    tokenizer = train_tokenizer(pretrain_text + texts["train"], preset["vocab"])
    data = {"pretrain": encode(tokenizer, pretrain_text), "train": encode(tokenizer, texts["train"]),
            "valid": encode(tokenizer, texts["valid"])}
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    base = pretrain(data, tokenizer, collator, preset, options)
    runs = (("full baseline", False, False), ("full ST_k", True, False),
            ("LoRA baseline", False, True), ("LoRA ST_k", True, True))
    rows = [cached_run(options.out, name.replace(" ", "_"),
                       lambda name=name, stk=stk, lora=lora: run_one(name, stk, lora, base, data, collator, preset, options))
            for name, stk, lora in runs]
    print_table(rows, COLUMNS, f"Causal-LM fine-tuning ({options.corpus}, {options.size}): transformers' loss vs ST_k "
                f"(k/n = {options.stk_k_ratio}), full and LoRA, seed {options.seed}")
    return rows


if __name__ == "__main__":
    main()
