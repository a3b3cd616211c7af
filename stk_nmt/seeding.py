"""One seed for Python's, numpy's and torch's generators, shared by the training CLIs."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got seed={seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy's legacy seed must fit in 32 bits
    torch.manual_seed(seed)
