"""One default per hyperparameter, read by every door: the core's signatures, build_loss, the fairseq
criteria's flags and the vision CLI (tests/test_defaults.py compares them door by door).

Where two losses share a name (LDAM's and the imbalanced top-K hinge's max_m and scale), each loss
has its own default; where two doors disagreed, the value below follows the reference (pytopk 0.1.0
for the top-K hinge losses, the papers for the others; docs: method.md, section 4).
"""

# ---- top-K hinge losses (Garcin et al. 2022) ------------------------------------------------------
# K of the top-K metric: top-5 accuracy, the paper's metric (pytopk has no default: k is required).
TOPK_K = 5
# S, noise draws per example: pytopk's n_sample=5 (BalNoisedTopK, ImbalNoisedTopK, NoisedTopK).
TOPK_SAMPLES = 5
# Balanced loss and the perturbed operator: pytopk's NoisedTopK default epsilon=1.0 (the paper's
# Pl@ntNet-300K balanced setting; its CIFAR-100 runs used 0.2).
TOPK_EPSILON = 1.0
# Imbalanced loss: pytopk gives no default; eps 0.01, max_m 0.2 are the paper's only imbalanced
# setting (Pl@ntNet-300K).
IMBALANCED_EPSILON = 0.01
IMBALANCED_MAX_M = 0.2
# pytopk's ImbalNoisedTopK default scale=50, which assumes a cosine (normalised) last layer; pytopk
# and method.md both say to set scale 1 with plain logits. 50 rather than 1 because the default
# follows the reference (the core promises pytopk's defaults, value for value), and the only door
# that picks the last layer itself (the vision CLI) builds a cosine one for this loss; the fairseq
# criterion, whose decoders have plain logits, warns when the scale is not 1.
IMBALANCED_SCALE = 50.0

# ---- other classification losses ----------------------------------------------------------------
# LDAM (Cao et al. 2019): largest margin 0.5 and logit scale s = 30, the paper's settings.
LDAM_MAX_M = 0.5
LDAM_SCALE = 30.0
# Logit adjustment (Menon et al. 2021): tau = 1, which is also the balanced softmax.
LOGIT_ADJUSTED_TAU = 1.0

# ---- aggregates ---------------------------------------------------------------------------------
# SReLU smoothing of ST_k: the paper's default.
DELTA = 0.01
SMOOTHER = "srelu"
# k as a fraction of the batch. The core has no default (it takes exactly one of k and k_ratio);
# each task's doors take that task's paper setting: translation k/n = 0.96 over target tokens,
# long-tail vision k = 0.9 x batch.
K_RATIO = {"translation": 0.96, "vision": 0.9}
