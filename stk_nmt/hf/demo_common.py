"""What the two Hugging Face examples share: offline corpora (the gettext catalogs, the synthetic
pair), a tokenizer trained here, the held-out token statistics, the side-by-side table."""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Callable, Optional

import torch
from tabulate import tabulate
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from stk_nmt.core import DEFAULT_K_RATIO
from stk_nmt.data import catalogs, synthetic

from .loss import label_smoothed_token_losses

SPECIALS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
TAIL_FRACTION = 0.04  # the tail the table reports: the worst 1 - 0.96 of the held-out tokens (ST_k's k/n)


def log(message: str) -> None:
    print(message, flush=True)


def corpus_pairs(corpus: str, sizes: dict, seed: int, target_lang: str = "fr",
                 locale_dir: Path = Path("/usr/share/locale"), max_words: int = 12) -> dict:
    """{split: [(source, target)]} of at most sizes[split] pairs: the gettext catalogs (en -> target_lang,
    the project's catalog filters and hash split) or the embedded synthetic pair."""
    if corpus == "synthetic":
        return synthetic.generate_corpus(seed, sizes["train"], sizes["valid"], sizes["test"])
    if corpus != "catalogs":
        raise ValueError(f"corpus must be 'catalogs' or 'synthetic', got corpus={corpus!r}")
    pairs, counts = catalogs.build_pairs(catalogs.find_catalogs(locale_dir, target_lang), max_words=max_words)
    splits = catalogs.split_pairs(pairs, valid_fraction=0.02, test_fraction=0.03)
    log(f"gettext catalogs en->{target_lang}: {counts['kept']:,} pairs kept; "
        + ", ".join(f"{name} {len(rows):,}" for name, rows in splits.items()))
    rng = random.Random(seed)
    return {name: rng.sample(rows, min(sizes[name], len(rows))) for name, rows in splits.items()}


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained here on `texts` (nothing downloaded), with <pad> <unk> <s> </s>."""
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS.values()), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIALS)


@torch.no_grad()
def token_statistics(model, batches, shift_labels: bool) -> dict:
    """Held-out token NLL (nats), whatever loss trained the model: the mean, the mean of the worst
    TAIL_FRACTION of tokens, and the perplexity."""
    model.eval()
    nlls = []
    for batch in batches:
        labels = batch.pop("labels")
        logits = model(**batch).logits
        _, nll, mask = label_smoothed_token_losses(logits, labels, shift_labels=shift_labels)
        nlls.append(nll[mask].double())
    nll = torch.cat(nlls)
    tail = max(1, math.ceil(TAIL_FRACTION * nll.numel()))
    mean = nll.mean().item()
    return {"tokens": nll.numel(), "nll": mean, "tail_nll": torch.topk(nll, tail).values.mean().item(),
            "ppl": math.exp(mean)}


def cached_run(out: Path, name: str, run: Callable[[], dict]) -> dict:
    """The result of one training run, computed once: a finished run's JSON is reused on a re-run."""
    path = out / f"{name}.json"
    if path.is_file():
        log(f"{name}: done before, reusing {path}")
        return json.loads(path.read_text())
    result = run()
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return result


OBJECTIVE_NOTE = ("training objective: each run's own loss, averaged over the steps it trained (after a resume, "
                  "the resumed ones); ST_k's is not a mean NLL, so compare runs on the held-out columns. NLL in nats.")


def print_table(rows: list[dict], columns: list[tuple[str, str]], title: str) -> str:
    table = tabulate([[row.get(key, "") for key, _ in columns] for row in rows], headers=[h for _, h in columns],
                     floatfmt=".3f", tablefmt="github")
    log(f"\n{title}\n{table}\n{OBJECTIVE_NOTE}")
    return table


def last_checkpoint(directory: Path) -> Optional[str]:
    """The Trainer's newest checkpoint under `directory` (a killed run resumes from it), or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(directory)) if directory.is_dir() else None


def example_parser(description: str, sizes, out: Path, corpus_help: Optional[str] = None) -> argparse.ArgumentParser:
    """The options both examples take; each adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--corpus", choices=["catalogs", "synthetic"], default="catalogs", help=corpus_help)
    parser.add_argument("--target-lang", default="fr", help="with --corpus catalogs: a locale directory name")
    parser.add_argument("--size", choices=sorted(sizes), default="small")
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stk-k-ratio", type=float, default=DEFAULT_K_RATIO)
    parser.add_argument("--stk-lam-lr", type=float, default=1.0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return parser
