"""Causal-LM fine-tuning (full and LoRA) with transformers' Trainer: its loss vs ST_k (stk_nmt.hf). --help for options."""
from stk_nmt.hf.demo_causal_lm import main

if __name__ == "__main__":
    main()
