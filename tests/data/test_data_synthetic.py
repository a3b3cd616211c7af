"""The embedded default corpus: deterministic, with reordering, agreement and a Zipf vocabulary."""

import collections

import numpy as np
import pytest

from stk_nmt.data.synthetic import build_lexicon, generate_corpus, write_corpus


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(seed=5, n_train=3000, n_valid=50, n_test=50)


def test_same_seed_same_corpus_other_seed_other_corpus(corpus, tmp_path):
    assert generate_corpus(seed=5, n_train=3000, n_valid=50, n_test=50) == corpus
    assert generate_corpus(seed=6, n_train=3000, n_valid=50, n_test=50)["train"] != corpus["train"]
    sizes = write_corpus(tmp_path, seed=5, n_train=3000, n_valid=50, n_test=50)
    assert sizes == {"train": 3000, "valid": 50, "test": 50}
    assert (tmp_path / "test.tgt").read_text(encoding="utf-8").splitlines() == [t for _, t in corpus["test"]]


def test_splits_are_disjoint(corpus):
    train = {s for s, _ in corpus["train"]}
    assert not train & {s for s, _ in corpus["test"]}
    assert not train & {s for s, _ in corpus["valid"]}


def test_subordinate_clauses_are_verb_final(corpus):
    lexicon = build_lexicon(5)
    finite_forms = {"hat", "haben"} | {v + ending for _, v in lexicon.verbs for ending in ("t", "en")}
    subordinate = [(s, t) for s, t in corpus["train"] if " that " in s]
    assert len(subordinate) > 500
    for source, target in subordinate:
        assert ", dass " in target
        last = target.rstrip(".").split()[-1]
        assert last in finite_forms, (source, target)


def test_past_tense_has_a_clause_final_participle(corpus):
    # Main clauses in the past: auxiliary "hat/haben" in second position, participle ge...t last.
    checked = 0
    for source, target in corpus["train"]:
        words = target.rstrip(".").split()
        if " that " not in source and ("hat" in words or "haben" in words):
            assert any(w.endswith("ed") for w in source.split()), (source, target)
            assert words[-1].startswith("ge") and words[-1].endswith("t"), (source, target)
            checked += 1
    assert checked > 100


def test_articles_agree_with_the_noun_gender(corpus):
    lexicon = build_lexicon(5)
    gender = {source: g for source, _, g in lexicon.nouns}
    indefinite = {"m": "Ein", "n": "Ein", "f": "Eine"}
    checked = 0
    for source, target in corpus["train"]:
        words = source.split()
        # "A <noun> ..." : an indefinite singular subject without adjective.
        if words[0] == "A" and words[1] in gender and not words[1] in {a for a, _ in lexicon.adjectives}:
            assert target.split()[0] == indefinite[gender[words[1]]], (source, target)
            checked += 1
    assert checked > 100


def test_vocabulary_is_zipf_long_tailed(corpus):
    lexicon = build_lexicon(5)
    rank = {source: r for r, (source, _, _) in enumerate(lexicon.nouns)}
    counts = collections.Counter()
    for source, _ in corpus["train"]:
        for word in source.rstrip(".").split():
            lemma = word[:-1] if word not in rank and word[:-1] in rank else word
            if lemma in rank:
                counts[rank[lemma]] += 1
    ranks = np.arange(1, 31)
    frequencies = np.array([counts[r - 1] for r in ranks], dtype=float)
    slope = np.polyfit(np.log(ranks), np.log(frequencies), 1)[0]
    assert -1.4 < slope < -0.8  # generated with p ~ rank^-1.1
    seen_once = sum(1 for c in counts.values() if c == 1)
    assert seen_once / len(counts) > 0.3  # a long tail of rare nouns


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_train"):
        generate_corpus(seed=1, n_train=0, n_valid=1, n_test=1)
