"""Translation with transformers' Seq2SeqTrainer: transformers' label-smoothed loss against ST_k, side by side.

    python examples/hf_seq2seq.py [--corpus catalogs|synthetic] [--target-lang fr] [--size tiny|small] [--out DIR]

A Marian model built from a config (random weights: nothing is downloaded) and a BPE tokenizer trained
here, on the gettext catalogs of the machine (real human translations, en -> --target-lang) or the
embedded synthetic pair. Both runs share the data, the model's initial weights and every setting but the
loss: `baseline` is transformers' Seq2SeqTrainer with label_smoothing_factor, `ST_k` is STkSeq2SeqTrainer
with the same label smoothing and stk_k_ratio. The table: held-out token NLL (mean, mean of the worst 4%
of tokens, perplexity) and chrF / BLEU of greedy translations. Progress: the Trainer's bar; a finished run
is reused and a killed one resumes from its last checkpoint when re-run with the same --out.
"""

from __future__ import annotations

from pathlib import Path

import sacrebleu
import torch
from transformers import DataCollatorForSeq2Seq, MarianConfig, MarianMTModel, Seq2SeqTrainer, Seq2SeqTrainingArguments

from .demo_common import (cached_run, corpus_pairs, example_parser, last_checkpoint, log, print_table, token_statistics,
                          train_tokenizer)
from .trainer import STkSeq2SeqTrainer

PRESETS = {
    # seconds on a CPU: the test suite's size
    "tiny": dict(train=300, valid=32, test=32, vocab=300, d_model=32, layers=1, ffn=64, heads=2, steps=12, batch=16,
                 lr=3e-3, translate=16),
    # minutes on a CPU
    "small": dict(train=20000, valid=500, test=500, vocab=4000, d_model=128, layers=2, ffn=512, heads=4, steps=3000,
                  batch=32, lr=1e-3, translate=500),
}
MAX_LEN = 32
COLUMNS = [("run", "run"), ("loss", "training objective"), ("nll", "valid NLL"), ("tail_nll", "valid NLL, worst 4%"),
           ("ppl", "valid ppl"), ("chrf", "test chrF"), ("bleu", "test BLEU"), ("lam", "final lam")]


def build_model(tokenizer, preset: dict, seed: int) -> MarianMTModel:
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(tokenizer), decoder_vocab_size=len(tokenizer), d_model=preset["d_model"],
        encoder_layers=preset["layers"], decoder_layers=preset["layers"], encoder_ffn_dim=preset["ffn"],
        decoder_ffn_dim=preset["ffn"], encoder_attention_heads=preset["heads"], decoder_attention_heads=preset["heads"],
        max_position_embeddings=MAX_LEN + 2, dropout=0.1, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=tokenizer.eos_token_id)
    return MarianMTModel(config)


def ids(tokenizer, text):
    """The token ids of `text`, cut to MAX_LEN - 1, then </s>."""
    return tokenizer(text)["input_ids"][:MAX_LEN - 1] + [tokenizer.eos_token_id]


def encode(tokenizer, pairs):
    return [{"input_ids": ids(tokenizer, source), "labels": ids(tokenizer, target)} for source, target in pairs]


@torch.no_grad()
def translate(model, tokenizer, sources, batch_size=32):
    model.eval()
    out = []
    for start in range(0, len(sources), batch_size):
        enc = tokenizer.pad([{"input_ids": ids(tokenizer, s)} for s in sources[start:start + batch_size]],
                            return_tensors="pt")
        ids_out = model.generate(**enc, max_new_tokens=MAX_LEN, num_beams=1, do_sample=False)
        out += tokenizer.batch_decode(ids_out, skip_special_tokens=True)
    return out


def run_one(name, stk: bool, data, tokenizer, preset, options) -> dict:
    out_dir = options.out / name
    model = build_model(tokenizer, preset, options.seed)
    common = dict(output_dir=str(out_dir), max_steps=preset["steps"], per_device_train_batch_size=preset["batch"],
                  learning_rate=preset["lr"], warmup_steps=max(1, preset["steps"] // 10), weight_decay=0.0,
                  label_smoothing_factor=options.label_smoothing, logging_steps=max(1, preset["steps"] // 6),
                  save_steps=max(1, preset["steps"] // 2), save_total_limit=1, report_to=[], use_cpu=True,
                  seed=options.seed, data_seed=options.seed, disable_tqdm=options.no_progress)
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    if stk:
        from .arguments import STkSeq2SeqTrainingArguments

        args = STkSeq2SeqTrainingArguments(**common, stk_k_ratio=options.stk_k_ratio, stk_lam_lr=options.stk_lam_lr)
        trainer = STkSeq2SeqTrainer(model=model, args=args, train_dataset=data["train"], data_collator=collator)
    else:
        args = Seq2SeqTrainingArguments(**common)
        trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=data["train"], data_collator=collator)
    log(f"[{name}] training {preset['steps']} steps")
    train = trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    valid = [collator(data["valid"][i:i + 32]) for i in range(0, len(data["valid"]), 32)]
    stats = token_statistics(model, valid, shift_labels=False)
    sources, references = zip(*data["test_pairs"][:preset["translate"]])
    hypotheses = translate(model, tokenizer, list(sources))
    result = {"run": name, "loss": train.training_loss, **stats,
              "chrf": sacrebleu.corpus_chrf(hypotheses, [list(references)]).score,
              "bleu": sacrebleu.corpus_bleu(hypotheses, [list(references)]).score,
              "example": {"source": sources[0], "reference": references[0], "hypothesis": hypotheses[0]}}
    if stk:
        result["lam"] = trainer.stk_loss.lam.item()
    return result


def main(argv=None) -> list[dict]:
    parser = example_parser(__doc__.split("\n")[0], PRESETS, Path("results/hf_seq2seq"))
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    options = parser.parse_args(argv)
    preset = PRESETS[options.size]
    options.out = options.out / f"{options.corpus}-{options.target_lang}-{options.size}-seed{options.seed}"
    pairs = corpus_pairs(options.corpus, preset, options.seed, options.target_lang)
    tokenizer = train_tokenizer([s for pair in pairs["train"] for s in pair], preset["vocab"])
    data = {"train": encode(tokenizer, pairs["train"]), "valid": encode(tokenizer, pairs["valid"]),
            "test_pairs": pairs["test"]}
    log(f"{len(data['train']):,} training pairs, vocabulary {len(tokenizer):,}; results in {options.out}")
    rows = [cached_run(options.out, name, lambda name=name, stk=stk: run_one(name, stk, data, tokenizer, preset, options))
            for name, stk in (("baseline", False), ("ST_k", True))]
    print_table(rows, COLUMNS, f"Seq2seq ({options.corpus}, {options.size}): transformers' label-smoothed loss vs "
                f"ST_k (k/n = {options.stk_k_ratio}), label smoothing {options.label_smoothing}, seed {options.seed}")
    return rows


if __name__ == "__main__":
    main()
