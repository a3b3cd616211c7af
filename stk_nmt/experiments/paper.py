"""Numbers published in the STk paper (Xia, Liu, Mao, NeurIPS 2024), as the project docs give them.

Only numbers transcribed in docs/ of this project are listed; a table whose numbers are not
transcribed is None and the results page says so instead of inventing them.
"""

# Table 1: seconds, n = 10,000 normal samples, k = 5, 50 runs.
TABLE1_SECONDS = {"BubbleSort": 20.42, "HeapSort": 0.1243, "AT_k": 0.2167, "ST_k": 0.0127}

# Table 3 (individual logistic loss): test misclassification in %, mean over repeats.
TABLE3_LOGISTIC = {
    "australian": {"average": 13.55, "atk": 14.43, "stk": 13.36},
    "german": {"average": 26.33, "atk": 26.81, "stk": 25.56},
    "phoneme": {"average": 20.82, "atk": 21.42, "stk": 16.43},
    "spambase": {"average": 6.97, "atk": 6.96, "stk": 6.61},
    "titanic": {"average": 22.61, "atk": 22.47, "stk": 21.80},
    "wisconsin": {"average": 3.28, "atk": 3.21, "stk": 2.94},
}

# Table 4 (hinge) and Table 6 (regression RMSE): not transcribed in the project docs.
TABLE4_HINGE = None
TABLE6_REGRESSION = None

# Figure 3: the Bayes-optimal linear boundary w* . x + b* = 0 printed by the paper.
FIG3_BAYES_W = (1.111, 1.111)
FIG3_BAYES_B = -0.836
