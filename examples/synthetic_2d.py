"""Synthetic 2-D example (STk paper, Figure 3): logistic regression under each aggregate vs the Bayes rule.

    python examples/synthetic_2d.py --out results                 # quick: 2,000 points
    python examples/synthetic_2d.py --mode full --out results     # 10,000 points, more steps

Two Gaussians, means [2, 2] (+1) and [0, 0] (-1), covariance 0.8^|j-k|, prior 8:2; the Bayes rule
is w* = [1.111, 1.111], b* = -0.836. Trains a linear model with the logistic loss aggregated by
average, AT_k, MAT_k and ST_k (full batch, Adam) and writes <out>/synthetic_2d.{json,csv,png}.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stk_nmt.experiments import synthetic_2d as syn  # noqa: E402
from stk_nmt.experiments.cli import base_parser, start  # noqa: E402
from stk_nmt.experiments.files import save_figure, write_csv, write_json  # noqa: E402
from stk_nmt.experiments.tabular import METHOD_LABELS  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

METHODS = ("average", "atk", "matk", "stk")
SIZES = {"full": (10_000, 3000), "quick": (2000, 1000), "smoke": (300, 150)}  # (n_train, Adam steps)


def plot(X, y, bayes, fits, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.scatter(*X[y > 0].T, s=3, c="tab:red", alpha=0.4, label="+1 (prior 0.8)")
    ax.scatter(*X[y < 0].T, s=3, c="tab:blue", alpha=0.4, label="-1 (prior 0.2)")
    xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 2)
    styles = ["--", "-.", ":", (0, (6, 2))]  # distinct dashes: the fitted lines often overlap
    lines = [("Bayes", *bayes, "k", "-")] + [(METHOD_LABELS[m], np.array(f["w"]), f["b"], None, styles[i % 4])
                                             for i, (m, f) in enumerate(fits.items())]
    for label, w, b, color, style in lines:
        ax.plot(xs, -(w[0] * xs + b) / w[1], linestyle=style, color=color, lw=1.5, label=label)
    ax.set_ylim(X[:, 1].min(), X[:, 1].max())
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Logistic regression: boundaries vs the Bayes rule", fontsize=9)
    save_figure(fig, path)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--k-ratio", type=float, default=0.8, help="k / n for AT_k, MAT_k, ST_k (default 0.8)")
    parser.add_argument("--delta", type=float, default=0.01, help="SReLU delta of ST_k (default 0.01)")
    args = parser.parse_args(argv)
    out = start(args)
    n, steps = SIZES[args.mode]
    rng = np.random.default_rng(args.seed)
    X, y = syn.sample(n, syn.PRIOR_POS, rng)
    X_test, y_test = syn.sample(50_000, syn.PRIOR_POS, rng)
    w_star, b_star = syn.bayes_boundary()
    print(f"Bayes rule: w* = [{w_star[0]:.3f}, {w_star[1]:.3f}], b* = {b_star:.3f}")
    t0 = time.perf_counter()
    rows = [{"method": "bayes", "w1": w_star[0], "w2": w_star[1], "b": b_star, "angle_deg": 0.0,
             "test_accuracy": float((syn.predict(X_test, w_star, b_star) == y_test).mean())}]
    fits = {}
    for m in tqdm(METHODS, desc="aggregates"):
        w, b = syn.train_linear(X, y, m, k_ratio=args.k_ratio, delta=args.delta, steps=steps, seed=args.seed)
        fits[m] = {"w": w.tolist(), "b": b}
        rows.append({"method": m, "w1": w[0], "w2": w[1], "b": b, "angle_deg": syn.angle_deg(w, w_star),
                     "test_accuracy": float((syn.predict(X_test, w, b) == y_test).mean())})
    for r in rows:
        print(f"  {r['method']:<8} w = [{r['w1']:.3f}, {r['w2']:.3f}]  b = {r['b']:.3f}  "
              f"angle to w* {r['angle_deg']:5.2f} deg  test accuracy {r['test_accuracy']:.4f}")
    result = {"mode": args.mode, "seed": args.seed, "n_train": n, "steps": steps, "k_ratio": args.k_ratio,
              "delta": args.delta, "bayes": {"w": w_star.tolist(), "b": b_star}, "rows": rows,
              "elapsed_s": time.perf_counter() - t0}
    write_json(out / "synthetic_2d.json", result)
    write_csv(out / "synthetic_2d.csv", rows)
    plot(X, y, (w_star, b_star), fits, out / "synthetic_2d.png")
    return result


if __name__ == "__main__":
    main()
