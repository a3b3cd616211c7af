"""How many rows of a (rows, L, S) noise buffer one chunk holds: bounded memory, and on the CPU the
same numbers as a one-shot torch.randn (chunks of whole multiples of 16 elements)."""

from __future__ import annotations

import math
import numbers
from typing import Optional

import torch

from ...arguments import ArgumentNames, bad_argument

# Elements of each of the two (rows, L, S) work buffers: 2**18 fp32 = 1 MiB, so the draw, the shift
# and the selection of a chunk stay in the core's cache (faster than 8 MiB chunks at (256, 1000, 5),
# no slower at (1024, 10000, 5)); the per-chunk Python cost is small against 2**18 normal draws.
DEFAULT_CHUNK_ELEMENTS = 1 << 18
# On other devices (GPU) there is no cache to fit, and every chunk costs a few kernel launches: 2**24
# elements (64 MiB fp32 per buffer) make a (4000 tokens x 32,000 words x 5) call 40 chunks, not 4,000.
ACCELERATOR_CHUNK_ELEMENTS = 1 << 24


def chunk_rows(n_rows: int, row_elements: int, chunk_elements: Optional[int],
               device: Optional[torch.device] = None, names: ArgumentNames = None) -> int:
    """Rows per chunk: at most chunk_elements elements (None: DEFAULT_CHUNK_ELEMENTS on the CPU,
    ACCELERATOR_CHUNK_ELEMENTS on other devices), a whole multiple of 16 elements when possible.

    Multiples of 16 keep the chunked CPU noise draw identical to a one-shot draw (see module doc).
    """
    if chunk_elements is None:
        on_cpu = device is None or device.type == "cpu"
        chunk_elements = DEFAULT_CHUNK_ELEMENTS if on_cpu else ACCELERATOR_CHUNK_ELEMENTS
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, numbers.Integral) or chunk_elements < 1:
        raise bad_argument("chunk_elements", "must be an integer >= 1 or None", chunk_elements, names)
    if n_rows * row_elements <= chunk_elements:
        return n_rows
    unit = 16 // math.gcd(row_elements, 16)  # rows per 16-element-aligned step
    rows = max(1, chunk_elements // row_elements)
    if rows >= unit:
        rows -= rows % unit
    return min(rows, n_rows)
