"""Checks that a fairseq data-bin is whole: each index against its .bin, its dictionary and the
subword text it was made from.

A truncated .bin otherwise surfaces only in training, as "offset must be non-negative" naming no
file. The format is fairseq's mmap indexed dataset (fairseq/data/indexed_dataset.py,
MMapIndexedDataset.Index): a 9-byte magic, a little-endian u64 version, a u8 dtype code, a u64
sentence count n, then n int32 sizes and n int64 byte offsets into the .bin. It is read here with
numpy rather than through fairseq, whose import costs the prepare process seconds and pulls in
torch and hydra for a few dozen bytes of header.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

INDEX_MAGIC = b"MMIDIDX\x00\x00"
_HEADER = len(INDEX_MAGIC) + 8 + 1 + 8
# fairseq's _code_to_dtype (6 is np.float64 there too).
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.double,
          8: np.uint16, 9: np.uint32, 10: np.uint64}
N_SPECIAL = 4  # <s>, <pad>, </s>, <unk>: ids 0-3, before the symbols listed in dict.*.txt
EOS = 2
RERUN = "rerun the prepare command, which rebuilds it"


def read_index(path: Path) -> tuple[np.dtype, np.ndarray, np.ndarray]:
    """(dtype, sizes, byte offsets) of a fairseq .idx file; a damaged one raises ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data-bin index not found: {path}; {RERUN}")
    data = path.read_bytes()
    if len(data) < _HEADER or not data.startswith(INDEX_MAGIC):
        raise ValueError(f"{path} is not a fairseq index (no {INDEX_MAGIC!r} header in its {len(data)} bytes); {RERUN}")
    (version,), code, (count,) = struct.unpack_from("<Q", data, 9), data[17], struct.unpack_from("<Q", data, 18)
    if version != 1 or code not in DTYPES:
        raise ValueError(f"{path} has index version {version} and dtype code {code}, not fairseq's 1 and "
                         f"one of {sorted(DTYPES)}; {RERUN}")
    if len(data) != _HEADER + 12 * count:
        raise ValueError(f"{path} holds {len(data):,} bytes, but an index of {count:,} sentences takes "
                         f"{_HEADER + 12 * count:,}: it is truncated or damaged; {RERUN}")
    sizes = np.frombuffer(data, np.int32, count, _HEADER)
    pointers = np.frombuffer(data, np.int64, count, _HEADER + 4 * count)
    return np.dtype(DTYPES[code]), sizes, pointers


def dictionary_size(path: Path) -> int:
    """Number of token ids of a fairseq dict.*.txt (its lines plus the four special symbols)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data-bin dictionary not found: {path}; {RERUN}")
    lines = path.read_bytes().split(b"\n")
    bad = [n for n, line in enumerate(lines, 1) if line and len(line.rsplit(b" ", 1)) != 2]
    if bad or not lines[0]:
        raise ValueError(f"{path} is not a fairseq dictionary (line {bad[0] if bad else 1} is not "
                         f"'<symbol> <count>'); {RERUN}")
    return N_SPECIAL + sum(1 for line in lines if line)


def check_dataset(prefix: Path, n_symbols: int, n_sentences: int | None = None) -> None:
    """Checks prefix.idx against prefix.bin: every offset where the sizes put it, the .bin exactly
    as long as the index says, each sentence ending with </s>, every id in the dictionary, and
    (when given) the number of sentences."""
    index, data = Path(f"{prefix}.idx"), Path(f"{prefix}.bin")
    dtype, sizes, pointers = read_index(index)
    if n_sentences is not None and len(sizes) != n_sentences:
        raise ValueError(f"{index} indexes {len(sizes):,} sentences where its subword text has "
                         f"{n_sentences:,}; {RERUN}")
    ends = np.cumsum(sizes, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]]) * dtype.itemsize
    if (sizes < 1).any() or not np.array_equal(pointers, starts):
        raise ValueError(f"{index} is damaged: its sizes and offsets do not agree; {RERUN}")
    if not data.is_file():
        raise FileNotFoundError(f"data-bin file not found: {data}; {RERUN}")
    expected = int(ends[-1]) * dtype.itemsize if len(ends) else 0
    if data.stat().st_size != expected:
        raise ValueError(f"{data} holds {data.stat().st_size:,} bytes, but its index {index.name} needs "
                         f"{expected:,}: it is truncated or damaged; {RERUN}")
    tokens = np.fromfile(data, dtype=dtype)
    if len(tokens) and (tokens.max() >= n_symbols or tokens.min() < 0):
        raise ValueError(f"{data} holds token id {int(tokens.max())}, beyond the {n_symbols:,} ids of its "
                         f"dictionary: it is damaged or belongs to another dictionary; {RERUN}")
    if len(tokens) and (tokens[ends - 1] != EOS).any():
        raise ValueError(f"{data} is damaged: not every sentence ends with </s>; {RERUN}")


def check_data_bin(directory: Path, source_lang: str, target_lang: str, sentences: dict[str, int]) -> None:
    """Checks every subset (fairseq's names: train, valid, test, test1, ...) of a data-bin against
    its index and dictionary; sentences gives each subset's number of lines of subword text."""
    directory = Path(directory)
    for lang in (source_lang, target_lang):
        n_symbols = dictionary_size(directory / f"dict.{lang}.txt")
        for subset, count in sentences.items():
            check_dataset(directory / f"{subset}.{source_lang}-{target_lang}.{lang}", n_symbols, count)
