"""Random (B, C) logits and a numpy reference for softmax cross-entropy, shared by the per-sample
loss tests (tests/core/losses) and the vision criterion tests (tests/vision)."""

import numpy as np
import torch


def batch(n=12, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, classes, generator=g, dtype=torch.float64) * 2, torch.randint(0, classes, (n,), generator=g)


def softmax_nll(z, y):
    """-log softmax(z)[y] per row, by numpy log-sum-exp."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - z[np.arange(len(y)), y]
