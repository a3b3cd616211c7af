"""Numbers published in the STk paper (Xia, Liu, Mao, NeurIPS 2024), as printed.

Transcribed from the paper's main text and appendix (the project's shared docs/paper-tables.md):
Tables 1, 2, 3, 4, 6 and 9, Figure 3's boundary and Figure 4 (read off the plot, approximate).
Means and standard deviations are (mean, std) pairs; errors in %, RMSE on targets in [0, 1].
"""

from typing import Dict, Tuple

MS = Tuple[float, float]

# Table 1: seconds to the top-k sum, n = 10,000 standard-normal samples, k = 5, 50 runs; AT_k and
# ST_k iterate until the error is below 1e-2. Only this one n was tested.
TABLE1 = {"n": 10_000, "k": 5, "runs": 50, "tol": 1e-2}
TABLE1_SECONDS: Dict[str, MS] = {
    "BubbleSort": (20.42196, 3.7015), "HeapSort": (0.1243, 0.0446), "AT_k": (0.2167, 0.1528),
    "ST_k": (0.0127, 0.0020),
}

# Table 2: d = 200 Gaussian, train negatives 20%, 50 repeats (means only are printed).
TABLE2: Dict[str, Dict[str, float]] = {
    "average": {"accuracy": 72.864, "para_f1": 0.1904, "seconds": 16.525},
    "maximum": {"accuracy": 65.448, "para_f1": 0.0909, "seconds": 6.145},
    "atk": {"accuracy": 73.013, "para_f1": 0.1986, "seconds": 19.271},
    "matk": {"accuracy": 73.180, "para_f1": 0.2063, "seconds": 15.774},
    "stk_elu": {"accuracy": 72.988, "para_f1": 0.1925, "seconds": 15.572},
    "stk_softplus": {"accuracy": 70.968, "para_f1": 0.1592, "seconds": 16.233},
    "stk_leaky_relu": {"accuracy": 73.864, "para_f1": 0.2441, "seconds": 15.525},
    "stk_srelu": {"accuracy": 76.104, "para_f1": 0.3446, "seconds": 15.436},
}

# Figure 4, read off the plot (approximate, low reliability): negative ratio -> value.
FIGURE4_RATIOS = (0.5, 0.1, 0.05, 0.01, 0.005, 0.001)
FIGURE4_READ: Dict[str, Dict[str, Tuple[float, ...]]] = {
    "accuracy": {"stk_srelu": (87.5, 78.5, 77.0, 76.0, 75.5, 74.5), "atk": (87.5, 76.5, 74.5, 73.5, 73.5, 72.5)},
    "para_f1": {"stk_srelu": (0.46, 0.33, 0.32, 0.40, 0.38, 0.37), "atk": (0.46, 0.26, 0.25, 0.31, 0.27, 0.27),
                "average": (0.46, 0.16, 0.12, 0.14, 0.12, 0.12)},
}

# Section 5.1 protocol (Tables 3 and 4).
CLASSIFICATION_PROTOCOL = {
    "repeats": 50, "early_stop_min_gain": 1e-6, "early_stop_steps": 50, "rollback": True,
    "grid": {"k": "{1} U {0.1, ..., 1.0}", "C": "1e0 ... 1e5", "eta": "0.1, 0.05, 0.01, 0.005, 0.001",
             "delta": "0.1, 0.01, 0.001, 0.0001"},
}

_T3 = {  # Table 3, individual logistic loss: misclassification %, (mean, std)
    "appendicitis": [(13.778, 6.601), (32.815, 11.306), (13.630, 6.400), (14.667, 7.114), (13.406, 5.491)],
    "australian": [(13.549, 1.025), (46.89, 8.779), (14.428, 1.056), (14.324, 1.058), (13.358, 0.982)],
    "german": [(26.328, 2.069), (45.832, 5.465), (26.808, 2.347), (26.392, 2.431), (25.561, 1.988)],
    "phoneme": [(20.823, 2.801), (45.83, 10.819), (21.420, 2.732), (17.828, 2.709), (16.427, 2.494)],
    "spambase": [(6.972, 1.519), (45.777, 19.418), (6.955, 1.535), (6.687, 1.577), (6.610, 1.333)],
    "titanic": [(22.613, 1.226), (48.065, 11.338), (22.468, 1.441), (22.211, 1.095), (21.801, 0.911)],
    "wisconsin": [(3.275, 0.814), (34.468, 9.306), (3.205, 0.773), (3.046, 0.570), (2.936, 0.665)],
}
_T4 = {  # Table 4, individual hinge loss
    "appendicitis": [(15.852, 8.082), (28.000, 12.443), (16.148, 7.436), (15.481, 5.577), (14.667, 5.736)],
    "wisconsin": [(3.240, 1.014), (12.000, 10.760), (3.158, 1.085), (2.936, 1.212), (2.889, 1.069)],
    "australian": [(13.225, 2.351), (36.347, 9.576), (13.896, 2.671), (14.243, 2.343), (13.746, 1.966)],
    "german": [(26.912, 2.694), (43.864, 12.432), (26.776, 3.010), (26.232, 2.190), (25.928, 2.973)],
    "titanic": [(22.152, 1.862), (47.691, 18.858), (22.316, 1.490), (22.116, 1.567), (21.966, 1.289)],
    "phoneme": [(21.543, 1.358), (44.656, 16.805), (20.733, 1.093), (17.335, 1.125), (17.152, 0.955)],
    "spambase": [(7.463, 0.742), (33.986, 8.955), (7.197, 0.695), (6.645, 0.677), (6.342, 0.589)],
}
# The columns of Tables 3 and 4, in the paper's order: registry names (tests check each is registered).
PAPER_METHODS = ("average", "maximum", "atk", "matk", "stk")
TABLE3_LOGISTIC: Dict[str, Dict[str, MS]] = {d: dict(zip(PAPER_METHODS, v)) for d, v in _T3.items()}
TABLE4_HINGE: Dict[str, Dict[str, MS]] = {d: dict(zip(PAPER_METHODS, v)) for d, v in _T4.items()}

_T6 = {  # Table 6: RMSE, (square: average, matk, stk), (absolute: average, matk, stk)
    "sinc": [(0.1603, 0.0065), (0.1591, 0.0068), (0.1446, 0.0070), (0.1686, 0.0064), (0.1560, 0.0067), (0.1457, 0.0043)],
    "housing": [(0.0896, 0.0083), (0.0816, 0.0100), (0.0810, 0.0096), (0.0781, 0.0099), (0.0670, 0.0083), (0.0626, 0.0089)],
    "abalone": [(0.0739, 0.0018), (0.0739, 0.0018), (0.0523, 0.0014), (0.0740, 0.0018), (0.0733, 0.0018), (0.0517, 0.0021)],
    "cpusmall": [(0.0613, 0.0012), (0.0313, 0.0005), (0.0296, 0.0005), (0.0613, 0.0012), (0.0313, 0.0005), (0.0244, 0.0006)],
}
TABLE6_SQUARE: Dict[str, Dict[str, MS]] = {d: dict(zip(("average", "matk", "stk"), v[:3])) for d, v in _T6.items()}
TABLE6_ABSOLUTE: Dict[str, Dict[str, MS]] = {d: dict(zip(("average", "matk", "stk"), v[3:])) for d, v in _T6.items()}
PAPER_TABLES = {("classification", "logistic"): TABLE3_LOGISTIC, ("classification", "hinge"): TABLE4_HINGE,
                ("regression", "square"): TABLE6_SQUARE, ("regression", "absolute"): TABLE6_ABSOLUTE}
TABLE_NAMES = {"logistic": "Table 3", "hinge": "Table 4", "square": "Table 6", "absolute": "Table 6"}

# Table 9: (n samples, d features) as the paper prints them.
TABLE9: Dict[str, Tuple[int, int]] = {
    "sinc": (1000, 10), "housing": (506, 13), "abalone": (4177, 8), "cpusmall": (8192, 12),
    "appendicitis": (106, 7), "australian": (690, 14), "german": (1000, 24), "phoneme": (5404, 5),
    "spambase": (4601, 57), "titanic": (2201, 3), "wisconsin": (683, 9),
}

# Figure 3: the Bayes-optimal linear boundary w* . x + b* = 0 printed by the paper.
FIG3_BAYES_W = (1.111, 1.111)
FIG3_BAYES_B = -0.836
