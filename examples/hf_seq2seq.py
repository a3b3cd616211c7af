"""Seq2seq with transformers' Seq2SeqTrainer: its label-smoothed loss vs ST_k (stk_nmt.hf). --help for options."""
from stk_nmt.hf.demo_seq2seq import main

if __name__ == "__main__":
    main()
