"""Fixtures shared across the test folders (tests/<area>/ mirrors stk_nmt/<area>/).

Helper modules live in tests/helpers/ (on pytest's pythonpath, see pyproject.toml): fairseq_tiny
(a tiny corpus, fairseq CLI runs and a Trainer), fairseq_fakes, translation_archives.
"""

import pytest


@pytest.fixture(scope="session")
def tiny_data_bin(tmp_path_factory):
    """fairseq-preprocess'ed tiny corpus, built once per session (preprocessing costs seconds)."""
    from fairseq_tiny import make_corpus, preprocess  # imports fairseq: only for the tests that need it

    directory = tmp_path_factory.mktemp("corpus")
    make_corpus(directory)
    return preprocess(directory)
