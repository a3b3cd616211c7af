"""The embedded default corpus: a seeded generator of a synthetic parallel language pair.

Nothing is downloaded: the corpus is generated deterministically from a seed, so every machine
gets byte-identical files. The pair has the structure that makes translation a sequence problem
rather than a word lookup:

- reordering: adverbs move behind the finite verb (verb-second); the past tense is an auxiliary
  plus a clause-final participle (verb bracket); subordinate "that" clauses are verb-final;
- agreement and morphology: nouns have one of three genders; articles and adjective endings
  agree in gender, number and case (nominative subject, accusative object, dative after
  prepositions); verbs agree with the subject's number; plurals depend on the gender;
- a long-tailed (Zipf) vocabulary: lemmas are drawn by rank with p ~ 1/rank^1.1, so most of the
  vocabulary is rare. Lemmas are built from syllables and the target lemma maps each syllable
  through a fixed bijection, like cognates: rare words are learnable through subwords.

Source ("src") reads like simplified English, target ("tgt") like simplified German, with nouns
capitalised in the target. Usage:
    python -m stk_nmt.data.synthetic --out raw/ --seed 1 --train 6000 --valid 400 --test 400
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from .io import atomic_write_lines

SOURCE_LANG = "src"
TARGET_LANG = "tgt"

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl"]
_VOWELS = ["a", "e", "i", "o", "u"]
_CODAS = ["", "", "n", "r", "s", "l"]

# Target function words: (definite, indefinite) articles by case and gender / plural.
_DEFINITE = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"},
}
_INDEFINITE = {
    "nom": {"m": "ein", "f": "eine", "n": "ein"},
    "acc": {"m": "einen", "f": "eine", "n": "ein"},
    "dat": {"m": "einem", "f": "einer", "n": "einem"},
}
_PLURAL_SUFFIX = {"m": "e", "f": "en", "n": "er"}
_PREPOSITIONS = {"with": "mit", "in": "in", "from": "von", "after": "nach"}


@dataclass(frozen=True)
class Lexicon:
    """Parallel lemmas, ranked by frequency (index 0 = most frequent)."""

    nouns: list[tuple[str, str, str]]  # (source lemma, target lemma, gender)
    verbs: list[tuple[str, str]]
    adjectives: list[tuple[str, str]]
    adverbs: list[tuple[str, str]]
    saying_verbs: list[tuple[str, str]]


def _syllables(rng: random.Random) -> list[str]:
    inventory = sorted({o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS})
    rng.shuffle(inventory)
    return inventory


def build_lexicon(seed: int, n_nouns: int = 1500, n_verbs: int = 300, n_adjectives: int = 300,
                  n_adverbs: int = 60) -> Lexicon:
    """Invent lemmas for both languages; a target lemma maps each source syllable bijectively."""
    rng = random.Random(f"lexicon-{seed}")
    source_syllables = _syllables(rng)
    target_syllables = list(source_syllables)
    rng.shuffle(target_syllables)
    syllable_map = dict(zip(source_syllables, target_syllables))
    used: set[str] = set()

    def lemma_pair(min_syl: int, max_syl: int) -> tuple[str, str]:
        while True:
            parts = [rng.choice(source_syllables) for _ in range(rng.randint(min_syl, max_syl))]
            source = "".join(parts)
            if source not in used and len(source) > 2:
                used.add(source)
                return source, "".join(syllable_map[p] for p in parts)

    nouns = [(*lemma_pair(1, 3), rng.choice("mfn")) for _ in range(n_nouns)]
    verbs = [lemma_pair(1, 2) for _ in range(n_verbs)]
    adjectives = [lemma_pair(1, 3) for _ in range(n_adjectives)]
    adverbs = [lemma_pair(2, 3) for _ in range(n_adverbs)]
    saying_verbs = [lemma_pair(1, 2) for _ in range(8)]
    return Lexicon(nouns, verbs, adjectives, adverbs, saying_verbs)


class SentenceGenerator:
    """Draws aligned (source, target) sentences from the grammar; deterministic given the seed."""

    def __init__(self, seed: int, zipf_exponent: float = 1.1):
        self.lexicon = build_lexicon(seed)
        self.rng = random.Random(f"sentences-{seed}")
        self.zipf_exponent = zipf_exponent
        self._weights: dict[int, list[float]] = {}

    def _pick(self, items: list):
        weights = self._weights.get(len(items))
        if weights is None:
            weights = [1.0 / (rank + 1) ** self.zipf_exponent for rank in range(len(items))]
            self._weights[len(items)] = weights
        return self.rng.choices(items, weights=weights, k=1)[0]

    def noun_phrase(self, case: str) -> tuple[list[str], list[str], bool]:
        """Returns source words, target words and whether the phrase is plural."""
        source_noun, target_noun, gender = self._pick(self.lexicon.nouns)
        plural = self.rng.random() < 0.3
        definite = plural and self.rng.random() < 0.6 or not plural and self.rng.random() < 0.6
        adjective = self._pick(self.lexicon.adjectives) if self.rng.random() < 0.4 else None
        source, target = [], []
        if definite:
            source.append("the")
            target.append(_DEFINITE[case]["pl" if plural else gender])
        elif not plural:
            source.append("a")
            target.append(_INDEFINITE[case][gender])
        if adjective:
            source.append(adjective[0])
            target.append(adjective[1] + self._adjective_ending(case, gender, plural, definite))
        source.append(source_noun + ("s" if plural else ""))
        target.append((target_noun + (_PLURAL_SUFFIX[gender] if plural else "")).capitalize())
        return source, target, plural

    @staticmethod
    def _adjective_ending(case: str, gender: str, plural: bool, definite: bool) -> str:
        if plural:
            return "en" if definite else "e"
        if not definite and case in ("nom", "acc") and gender != "f":
            if gender == "n":
                return "es"
            return "er" if case == "nom" else "en"
        if case == "nom" or (case == "acc" and gender != "m"):
            return "e"
        return "en"

    def clause(self, subordinate: bool) -> tuple[list[str], list[str]]:
        subject_src, subject_tgt, plural = self.noun_phrase("nom")
        object_src, object_tgt, _ = self.noun_phrase("acc")
        verb_src, verb_tgt = self._pick(self.lexicon.verbs)
        past = self.rng.random() < 0.35
        adverb = self._pick(self.lexicon.adverbs) if self.rng.random() < 0.35 else None
        pp_src, pp_tgt = [], []
        if self.rng.random() < 0.3:
            preposition = self.rng.choice(sorted(_PREPOSITIONS))
            np_src, np_tgt, _ = self.noun_phrase("dat")
            pp_src, pp_tgt = [preposition, *np_src], [_PREPOSITIONS[preposition], *np_tgt]

        if past:
            verb_src_form = verb_src + "ed"
        else:
            verb_src_form = verb_src if plural else verb_src + "s"
        source = [*subject_src, verb_src_form, *object_src, *pp_src]
        if adverb:
            source.append(adverb[0])

        finite = ("haben" if plural else "hat") if past else verb_tgt + ("en" if plural else "t")
        participle = ["ge" + verb_tgt + "t"] if past else []
        adverb_tgt = [adverb[1]] if adverb else []
        if subordinate:  # verb-final: ... object pp participle finite
            target = [*subject_tgt, *adverb_tgt, *object_tgt, *pp_tgt, *participle, finite]
        else:  # verb-second, participle at the end of the clause
            target = [*subject_tgt, finite, *adverb_tgt, *object_tgt, *pp_tgt, *participle]
        return source, target

    def sentence(self) -> tuple[str, str]:
        if self.rng.random() < 0.35:
            speaker_src, speaker_tgt, plural = self.noun_phrase("nom")
            say_src, say_tgt = self._pick(self.lexicon.saying_verbs)
            inner_src, inner_tgt = self.clause(subordinate=True)
            source = [*speaker_src, say_src if plural else say_src + "s", "that", *inner_src]
            target = [*speaker_tgt, say_tgt + ("en" if plural else "t"), ",", "dass", *inner_tgt]
        else:
            source, target = self.clause(subordinate=False)
        return _surface(source), _surface(target)


def _surface(words: list[str]) -> str:
    """Capitalise the first word, attach commas and a final full stop, as raw text does."""
    text = " ".join(words).replace(" ,", ",")
    return text[0].upper() + text[1:] + "."


def generate_corpus(seed: int, n_train: int, n_valid: int, n_test: int) -> dict[str, list[tuple[str, str]]]:
    """Distinct sentence pairs split into train/valid/test (no test sentence occurs in train)."""
    for name, value in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    generator = SentenceGenerator(seed)
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    total = n_train + n_valid + n_test
    attempts = 0
    while len(pairs) < total:
        attempts += 1
        if attempts > 20 * total:
            raise ValueError(f"could not draw {total} distinct sentences with seed {seed}")
        source, target = generator.sentence()
        if source not in seen:
            seen.add(source)
            pairs.append((source, target))
    return {
        "train": pairs[:n_train],
        "valid": pairs[n_train:n_train + n_valid],
        "test": pairs[n_train + n_valid:],
    }


def write_corpus(out_dir: Path, seed: int, n_train: int, n_valid: int, n_test: int) -> dict[str, int]:
    """Writes {split}.src / {split}.tgt (raw text, one sentence a line); returns the sizes."""
    out_dir = Path(out_dir)
    corpus = generate_corpus(seed, n_train, n_valid, n_test)
    for split, pairs in corpus.items():
        atomic_write_lines(out_dir / f"{split}.{SOURCE_LANG}", [s for s, _ in pairs])
        atomic_write_lines(out_dir / f"{split}.{TARGET_LANG}", [t for _, t in pairs])
    return {split: len(pairs) for split, pairs in corpus.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for {split}.src/.tgt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--valid", type=int, default=400)
    parser.add_argument("--test", type=int, default=400)
    args = parser.parse_args(argv)
    sizes = write_corpus(args.out, args.seed, args.train, args.valid, args.test)
    print(f"seed {args.seed}: wrote {sizes} to {args.out}")


if __name__ == "__main__":
    main()
