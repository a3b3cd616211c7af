"""Models (ResNet-32 size, cosine classifier, torchvision message) and the accuracy report vs brute force."""

import importlib.util

import numpy as np
import pytest
import torch

from stk_nmt.vision import accuracy_report, build_model, evaluate, resnet32
from stk_nmt.vision.metrics import hits_at_k


def test_resnet32_parameter_count_and_shape():
    # He et al. 2016, Table 6 / LDAM-DRW's resnet_cifar.py: ResNet-32 for CIFAR-10 has 0.46M parameters
    # (464,154 = convs and BN of 3 stages x 5 blocks + 64x10 linear with bias).
    model = resnet32(10)
    assert sum(p.numel() for p in model.parameters()) == 464154
    out = resnet32(100)(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)


def test_cosine_classifier_outputs_cosines():
    model = build_model("cnn", 10, (1, 28, 28), normed=True).eval()
    with torch.no_grad():
        out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10) and float(out.abs().max()) <= 1 + 1e-6
    assert build_model("mlp", 3, (1, 8, 8))(torch.randn(5, 1, 8, 8)).shape == (5, 3)
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("vit", 10, (3, 32, 32))


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
def test_torchvision_backbone_without_torchvision():
    with pytest.raises(ImportError, match=r"torchvision:resnet50.*needs torchvision.*resnet32, cnn, mlp"):
        build_model("torchvision:resnet50", 1000, (3, 224, 224))


def brute_force_report(logits, labels, counts):
    """Accuracies by explicit loops over samples."""
    n, c = logits.shape
    order = np.argsort(-logits, axis=1, kind="stable")
    top1 = [order[i, 0] == labels[i] for i in range(n)]
    top5 = [labels[i] in order[i, :5] for i in range(n)]
    per_class = [100 * np.mean([top1[i] for i in range(n) if labels[i] == k]) for k in range(c)]

    def group(hits, keep):
        chosen = [hits[i] for i in range(n) if keep(counts[labels[i]])]
        return 100 * np.mean(chosen)

    return {
        "top1": 100 * np.mean(top1), "top5": 100 * np.mean(top5), "per_class_top1": per_class,
        "many_top1": group(top1, lambda m: m > 100), "medium_top1": group(top1, lambda m: 20 <= m <= 100),
        "few_top1": group(top1, lambda m: m < 20), "few_top5": group(top5, lambda m: m < 20),
    }


def test_accuracy_report_matches_brute_force():
    rng = np.random.default_rng(0)
    counts = [500, 200, 101, 100, 60, 20, 19, 5]
    labels = np.repeat(np.arange(8), 25)
    logits = rng.normal(size=(200, 8)) + 1.5 * np.eye(8)[labels]
    report = accuracy_report(hits_at_k(torch.tensor(logits), torch.tensor(labels)), torch.tensor(labels), counts)
    expected = brute_force_report(logits, labels, counts)
    for key, value in expected.items():
        assert np.allclose(report[key], value), key
    assert report["shot_classes"] == {"many": 3, "medium": 3, "few": 2}


def test_top5_reported_as_none_below_five_classes_and_empty_groups():
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    report = accuracy_report(hits_at_k(logits, labels), labels, [300, 200, 150])
    assert report["top5"] is None and report["few_top1"] is None and report["medium_top1"] is None
    assert report["many_top1"] == pytest.approx(report["top1"])


def test_evaluate_runs_the_model_in_eval_mode():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6), torch.nn.Dropout(0.9)).train()
    x, y = torch.randn(30, 1, 2, 2), torch.randint(0, 6, (30,))
    loader = [(x[:16], y[:16]), (x[16:], y[16:])]
    report = evaluate(model, loader, [10] * 6)
    assert model.training  # restored
    with torch.no_grad():
        logits = model.eval()(x)
    assert report["top1"] == pytest.approx(100 * float((logits.argmax(1) == y).double().mean()))


def test_vision_never_imports_fairseq_or_torchvision():
    import subprocess
    import sys

    code = "import sys, stk_nmt.vision.train; print('fairseq' in sys.modules, 'torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
