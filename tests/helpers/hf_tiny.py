"""Tiny Hugging Face models from configs (random weights, no download) and token batches for tests/hf."""

import torch

import stk_nmt.hf  # noqa: F401  (first: hides an unloadable torchaudio from transformers)
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MarianConfig, MarianMTModel

VOCAB = 40
PAD = 0


def tiny_gpt2(seed=0, vocab=VOCAB):
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_positions=32, n_embd=16, n_layer=1, n_head=2, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=PAD, bos_token_id=1, eos_token_id=2)
    return GPT2LMHeadModel(config)


def tiny_llama(seed=0, vocab=VOCAB):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                         pad_token_id=PAD, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(config)


def tiny_marian(seed=0, vocab=VOCAB):
    torch.manual_seed(seed)
    config = MarianConfig(vocab_size=vocab, decoder_vocab_size=vocab, d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=32, dropout=0.0, attention_dropout=0.0,
                          activation_dropout=0.0, pad_token_id=PAD, eos_token_id=2, decoder_start_token_id=PAD)
    return MarianMTModel(config)


def causal_examples(count, seed=0, min_len=4, max_len=12, vocab=VOCAB):
    """Rows of random token ids of random lengths (input_ids = labels), unpadded."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        ids = torch.randint(3, vocab, (length,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": ids})
    return rows


def pad_causal(rows):
    """A batch padded on the right: input_ids with PAD, labels with -100, attention_mask."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), PAD)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
