"""Imbalance sweep (STk paper, Figure 4): accuracy and F1 against the negative-sample ratio.

    python examples/imbalance_sweep.py --out results               # quick
    python examples/imbalance_sweep.py --mode full --out results

The data of the 2-D example (+1 around [2, 2], -1 around [0, 0], covariance 0.8^|j-k|) with a
fraction r of negatives, r from 0.5 (balanced) to 0.95. Logistic regression with the logistic loss
aggregated by average, AT_k and ST_k; test accuracy and F1 of the +1 class (the minority for
r > 0.5) on a test set with the same ratio, mean +- std over repeats; the Bayes rule of each ratio is
drawn for reference. Writes <out>/imbalance_sweep.{json,csv,png}.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from stk_nmt.experiments import synthetic as syn  # noqa: E402
from stk_nmt.experiments.cli import base_parser, start  # noqa: E402
from stk_nmt.experiments.files import save_figure, write_csv, write_json  # noqa: E402
from stk_nmt.experiments.tabular import METHOD_LABELS  # noqa: E402

METHODS = ("average", "atk", "stk")
RATIOS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
# (n_train, n_test, Adam steps, repeats)
SIZES = {"full": (5000, 20_000, 2000, 10), "quick": (1000, 10_000, 600, 3), "smoke": (200, 1000, 60, 1)}


def plot(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, metric in zip(axes, ("accuracy", "f1")):
        for m in ("bayes",) + METHODS:
            rows = [r for r in summary if r["method"] == m]
            x = [r["neg_ratio"] for r in rows]
            mean = np.array([r[f"{metric}_mean"] for r in rows])
            std = np.array([r[f"{metric}_std"] for r in rows])
            style = dict(color="k", ls=":") if m == "bayes" else {}
            ax.plot(x, mean, marker="o", ms=3, label="Bayes rule" if m == "bayes" else METHOD_LABELS[m], **style)
            ax.fill_between(x, mean - std, mean + std, alpha=0.15, **({"color": "k"} if m == "bayes" else {}))
        ax.set_xlabel("negative-sample ratio", fontsize=8)
        ax.set_ylabel("test accuracy" if metric == "accuracy" else "F1 of the +1 class", fontsize=8)
    axes[0].legend(fontsize=7)
    save_figure(fig, path)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--k-ratio", type=float, default=0.8, help="k / n for AT_k and ST_k (default 0.8)")
    parser.add_argument("--delta", type=float, default=0.01)
    parser.add_argument("--ratios", type=float, nargs="+", default=list(RATIOS), help="negative-sample ratios")
    parser.add_argument("--repeats", type=int, help="default: 10 full, 3 quick, 1 smoke")
    args = parser.parse_args(argv)
    bad = [r for r in args.ratios if not 0 < r < 1]
    if bad:
        raise ValueError(f"--ratios must lie in (0, 1), got {bad}")
    out = start(args)
    n, n_test, steps, repeats = SIZES[args.mode]
    repeats = args.repeats or repeats
    t0 = time.perf_counter()
    runs = []
    jobs = [(r, rep) for r in args.ratios for rep in range(repeats)]
    for ratio, rep in tqdm(jobs, desc="ratio x repeat"):
        rng = np.random.default_rng([args.seed, rep, int(round(ratio * 1000))])
        X, y = syn.sample(n, 1 - ratio, rng)
        X_test, y_test = syn.sample(n_test, 1 - ratio, rng)
        fits = {"bayes": syn.bayes_boundary(prior_pos=1 - ratio)}
        for m in METHODS:
            w, b = syn.train_linear(X, y, m, k_ratio=args.k_ratio, delta=args.delta, steps=steps, seed=args.seed + rep)
            fits[m] = (w, b)
        for m, (w, b) in fits.items():
            pred = syn.predict(X_test, w, b)
            runs.append({"neg_ratio": ratio, "repeat": rep, "method": m, "accuracy": accuracy_score(y_test, pred),
                         "f1": f1_score(y_test, pred, pos_label=1.0, zero_division=0.0)})
    summary = []
    for ratio in args.ratios:
        for m in ("bayes",) + METHODS:
            sel = [r for r in runs if r["neg_ratio"] == ratio and r["method"] == m]
            acc, f1 = np.array([r["accuracy"] for r in sel]), np.array([r["f1"] for r in sel])
            summary.append({"neg_ratio": ratio, "method": m, "accuracy_mean": acc.mean(), "accuracy_std": acc.std(),
                            "f1_mean": f1.mean(), "f1_std": f1.std()})
    print(f"{'ratio':>5} " + " ".join(f"{m:>16}" for m in ("bayes",) + METHODS) + "   (accuracy / F1)")
    for ratio in args.ratios:
        cells = [next(s for s in summary if s["neg_ratio"] == ratio and s["method"] == m) for m in ("bayes",) + METHODS]
        print(f"{ratio:5.2f} " + " ".join(f"{c['accuracy_mean']:7.4f}/{c['f1_mean']:.4f}" for c in cells))
    result = {"mode": args.mode, "seed": args.seed, "n_train": n, "n_test": n_test, "steps": steps,
              "repeats": repeats, "k_ratio": args.k_ratio, "delta": args.delta, "summary": summary, "runs": runs,
              "elapsed_s": time.perf_counter() - t0}
    write_json(out / "imbalance_sweep.json", result)
    write_csv(out / "imbalance_sweep.csv", summary)
    plot(summary, out / "imbalance_sweep.png")
    return result


if __name__ == "__main__":
    main()
