"""End to end: fairseq-train with each top-K hinge criterion for two epochs, then fairseq-generate."""

import pytest

pytest.importorskip("fairseq")

from fairseq_tiny import USER_DIR, make_corpus, parse_logs, preprocess, run, train  # noqa: E402

N_TEST = 40  # test sentences written by make_corpus


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topk_corpus")
    make_corpus(folder, n_train=200)
    return preprocess(folder)


@pytest.mark.slow
@pytest.mark.parametrize(
    "criterion,flags",
    [
        ("topk_hinge", ["--topk-k", "3", "--topk-eps", "0.5", "--label-smoothing", "0.1"]),
        ("imbalanced_topk_hinge", ["--topk-k", "3", "--topk-eps", "0.1", "--topk-max-m", "0.3", "--topk-scale", "1",
                                   "--stk-aggregate", "average", "--topk-ce-mix", "0.3", "--topk-hinge-noise", "truncated"]),
    ],
)
def test_train_two_epochs_then_generate(data_bin, tmp_path, criterion, flags):
    save = tmp_path / "ckpt"
    _, output = train(data_bin, save, "--criterion", criterion, *flags, "--max-epoch", "2")
    epochs = parse_logs(output, "train")
    assert [int(e["epoch"]) for e in epochs] == [1, 2]
    for e in epochs:
        for key in ("train_loss", "train_nll_loss", "train_accuracy", "train_topk_accuracy", "train_wps"):
            assert key in e, (key, e)
        assert e["train_topk_accuracy"] >= e["train_accuracy"]
    assert epochs[1]["train_nll_loss"] < epochs[0]["train_nll_loss"]  # it learns
    assert [int(v["epoch"]) for v in parse_logs(output, "valid")] == [1, 2]
    out = run("fairseq_cli.generate", data_bin, "--user-dir", USER_DIR, "--task", "translation",
              "--path", save / "checkpoint_last.pt", "--gen-subset", "test", "--beam", "2",
              "--batch-size", "16", "--required-batch-size-multiple", "1", "--cpu")
    hypotheses = [line for line in out.stdout.splitlines() if line.startswith("H-")]
    assert len(hypotheses) == N_TEST
