"""Text processing steps: Moses tokenisation (sacremoses), length cleaning, sentencepiece."""

from __future__ import annotations

import multiprocessing
from functools import partial
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

_CHUNK = 2000


def _process_chunk(lines: Sequence[str], lang: str, normalize: bool, tokenize: bool,
                   lowercase: bool) -> list[str]:
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    normalizer = MosesPunctNormalizer(lang=lang) if normalize else None
    tokenizer = MosesTokenizer(lang=lang) if tokenize else None
    out = []
    for line in lines:
        text = line.strip()
        if normalizer is not None:
            text = normalizer.normalize(text).strip()
        if tokenizer is not None:
            # escape=True matches tokenizer.perl's default (&amp; &apos; ...), as fairseq's recipe used.
            text = tokenizer.tokenize(text, escape=True, return_str=True)
        out.append(text.lower() if lowercase else text)
    return out


def moses_process(lines: Sequence[str], lang: str, normalize: bool = False, tokenize: bool = True,
                  lowercase: bool = False, workers: int = 1, desc: str = "tokenise") -> list[str]:
    """sacremoses punctuation normalisation and tokenisation (the Python ports of Moses'
    normalize-punctuation.perl and tokenizer.perl), then lowercasing; chunked over worker
    processes with a progress bar."""
    chunks = [lines[i:i + _CHUNK] for i in range(0, len(lines), _CHUNK)]
    work = partial(_process_chunk, lang=lang, normalize=normalize, tokenize=tokenize, lowercase=lowercase)
    out: list[str] = []
    with tqdm(total=len(lines), desc=f"{desc}.{lang}", unit="line", leave=False) as bar:
        if workers > 1 and len(chunks) > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for result in pool.imap(work, chunks):
                    out.extend(result)
                    bar.update(len(result))
        else:
            for chunk in chunks:
                out.extend(work(chunk))
                bar.update(len(chunk))
    return out


def moses_detokenize(lines: Sequence[str], lang: str) -> list[str]:
    from sacremoses import MosesDetokenizer

    detokenizer = MosesDetokenizer(lang=lang)
    return [detokenizer.detokenize(line.split(), unescape=True) for line in lines]


def length_filter(source: Sequence[str], target: Sequence[str], min_len: int, max_len: int,
                  ratio: float) -> list[int]:
    """Indices of the pairs clean-corpus-n.perl keeps: both sides non-empty with min_len..max_len
    space-separated tokens, and neither side more than `ratio` times longer than the other.
    (Moses' script is Perl; this is its rule in a few lines rather than a Perl dependency.)"""
    if min_len < 1 or max_len < min_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if ratio <= 0:
        raise ValueError(f"ratio must be > 0, got {ratio}")
    keep = []
    for index, (src, tgt) in enumerate(zip(source, target)):
        n_src, n_tgt = len(src.split()), len(tgt.split())
        if not (min_len <= n_src <= max_len and min_len <= n_tgt <= max_len):
            continue
        if n_src / n_tgt > ratio or n_tgt / n_src > ratio:
            continue
        keep.append(index)
    return keep


def train_sentencepiece(inputs: Sequence[Path], model_prefix: Path, vocab_size: int,
                        model_type: str = "bpe", character_coverage: float = 1.0,
                        input_sentence_size: int = 2_000_000, seed: int = 1) -> Path:
    """Trains one joint sentencepiece model over all inputs; returns the .model path."""
    import sentencepiece as spm

    if vocab_size < 8:
        raise ValueError(f"vocab_size must be >= 8, got {vocab_size}")
    if not 0 < character_coverage <= 1:
        raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage}")
    spm.set_random_generator_seed(seed)  # input sampling/shuffling is then reproducible
    try:
        spm.SentencePieceTrainer.train(
            # A list, which the wrapper writes as CSV and the trainer parses as such: a path with a
            # comma stays one path (",".join would split it).
            input=[str(p) for p in inputs], model_prefix=str(model_prefix),
            vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage,
            input_sentence_size=input_sentence_size, shuffle_input_sentence=True,
            num_threads=2, minloglevel=2, bos_id=-1, eos_id=-1,
        )
    except RuntimeError as error:
        if "Vocabulary size" in str(error):
            raise ValueError(f"vocab_size={vocab_size} is too large for this corpus: {error}") from error
        raise
    return Path(f"{model_prefix}.model")


def sentencepiece_encode(model: Path, lines: Sequence[str], desc: str = "encode") -> list[str]:
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model))
    out = []
    for start in tqdm(range(0, len(lines), 10_000), desc=desc, unit="chunk", leave=False):
        pieces = processor.encode(list(lines[start:start + 10_000]), out_type=str)
        out.extend(" ".join(p) for p in pieces)
    return out
