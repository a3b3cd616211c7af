"""lam's lifecycle under fairseq's own Trainer and task code (CPU, tiny transformer).

lam is initialised by the first training batch only, and changes exactly when the model's
parameters change, once per update, by lr times the token-weighted mean of the update's
micro-batch gradients. References: fairseq's label_smoothed_nll_loss on the model's own output,
a sort for the k-th largest loss, and central finite differences of the unfused ST_k in float64.
"""

import copy

import pytest
import torch

fairseq = pytest.importorskip("fairseq")
import stk_nmt  # noqa: E402,F401
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss  # noqa: E402

from stk_nmt.core import lambda_form  # noqa: E402
from fairseq_tiny import build_trainer  # noqa: E402

LR, K_RATIO, DELTA, EPS = 0.5, 0.6, 0.5, 0.1
STK = ["--criterion", "stk", "--label-smoothing", str(EPS), "--stk-k-ratio", str(K_RATIO),
       "--stk-delta", str(DELTA), "--stk-lam-lr", str(LR)]


def token_losses(model, sample, pad):
    """The valid label-smoothed token losses of `sample` under `model` (a frozen copy), float64."""
    model = copy.deepcopy(model).train()
    with torch.no_grad():
        out = model(**sample["net_input"])
        lprobs = model.get_normalized_probs(out, log_probs=True).view(-1, out[0].size(-1))
        target = sample["target"].view(-1)
        loss, _ = label_smoothed_nll_loss(lprobs.double(), target, EPS, ignore_index=pad, reduce=False)
    return loss.view(-1)[target.ne(pad)]


def kth_largest(valid):
    k = -(-int(round(K_RATIO * valid.numel() * 1e9)) // int(1e9))  # ceil, as the criterion rounds
    return float(torch.sort(valid, descending=True).values[k - 1]), k


def lam_grad(valid, lam, h=1e-5):
    """d ST_k / d lam at lam by central differences (float64)."""
    _, k = kth_largest(valid)

    def value(x):
        return float(lambda_form(valid, torch.tensor(x, dtype=torch.float64), k, delta=DELTA, fused=False))

    return (value(lam + h) - value(lam - h)) / (2 * h)


def lam_of(trainer):
    return float(trainer.criterion.lam_value)


def weights(trainer):
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_validation_before_training_leaves_lam_to_the_first_training_batch(tiny_data_bin, tmp_path):
    trainer, batches = build_trainer(tiny_data_bin, tmp_path, *STK)
    pad = trainer.task.target_dictionary.pad()
    trainer.valid_step(batches[1])  # model.eval() + no_grad, as fairseq validates
    assert not bool(trainer.criterion.aggregate.lam_initialized)
    valid0 = token_losses(trainer.model, batches[0], pad)
    lam0, _ = kth_largest(valid0)
    trainer.train_step([batches[0]])
    # Initialised to the training batch's k-th largest loss, then one SGD step from there.
    expected = lam0 - LR * lam_grad(valid0, lam0)
    assert lam_of(trainer) == pytest.approx(expected, abs=1e-5)
    assert float(trainer.criterion.aggregate.lam.detach()) == pytest.approx(expected, abs=1e-5)


def test_update_freq_two_moves_lam_once_by_the_token_weighted_mean_gradient(tiny_data_bin, tmp_path):
    trainer, batches = build_trainer(tiny_data_bin, tmp_path, *STK, "--update-freq", "2")
    pad = trainer.task.target_dictionary.pad()
    v0, v1 = token_losses(trainer.model, batches[0], pad), token_losses(trainer.model, batches[1], pad)
    lam0, _ = kth_largest(v0)
    g = (v0.numel() * lam_grad(v0, lam0) + v1.numel() * lam_grad(v1, lam0)) / (v0.numel() + v1.numel())
    trainer.train_step(batches[:2])
    assert trainer.get_num_updates() == 1
    assert lam_of(trainer) == pytest.approx(lam0 - LR * g, abs=1e-5)


def test_dummy_batch_does_not_move_lam(tiny_data_bin, tmp_path):
    # fairseq feeds a dummy batch (an earlier batch, loss multiplied by 0) to a process that ran out
    # of data; the update is that of the real batch alone.
    trainer, batches = build_trainer(tiny_data_bin, tmp_path, *STK)
    pad = trainer.task.target_dictionary.pad()
    v0 = token_losses(trainer.model, batches[0], pad)
    lam0, _ = kth_largest(v0)
    trainer.reset_dummy_batch(batches[3])  # what trainer.get_train_iterator does
    trainer.train_step([batches[0], {}])  # {} -> fairseq's dummy batch, ignore_grad=True
    assert lam_of(trainer) == pytest.approx(lam0 - LR * lam_grad(v0, lam0), abs=1e-5)


def test_fp16_overflow_skipped_step_leaves_lam_and_model_alone(tiny_data_bin, tmp_path, monkeypatch):
    trainer, batches = build_trainer(tiny_data_bin, tmp_path, *STK, "--fp16", "--fp16-no-flatten-grads")
    trainer.train_step([batches[0]])
    lam1, w1 = lam_of(trainer), weights(trainer)
    # A loss scale that overflows the fp16 gradients: fairseq's FP16Optimizer raises OverflowError
    # in clip_grad_norm, the trainer zeroes the gradients and skips the step. Its handler then
    # builds torch.tensor(0.0).cuda() for the log: made a no-op on this CPU-only machine.
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **kw: self)
    trainer.optimizer.scaler.loss_scale = 2.0 ** 100
    trainer.train_step([batches[1]])
    assert trainer.get_num_updates() == 1  # the step was skipped
    assert all(torch.equal(a, b) for a, b in zip(w1, weights(trainer)))
    assert lam_of(trainer) == lam1
    # The next good update moves lam by that batch's gradient only (nothing left over).
    pad = trainer.task.target_dictionary.pad()
    v2 = token_losses(trainer.model, batches[2], pad)
    trainer.optimizer.scaler.loss_scale = 128.0
    trainer.train_step([batches[2]])
    assert trainer.get_num_updates() == 2
    assert lam_of(trainer) == pytest.approx(lam1 - LR * lam_grad(v2, lam1), abs=2e-3)  # fp16 model


def test_amp_retry_of_the_same_batch_moves_lam_once(tiny_data_bin, tmp_path):
    # On a GPU, --amp retries an overflowing batch: forward+backward, GradScaler.step finds infs and
    # skips optimizer.step(), then train_step runs again (zero_grad, forward, backward, step). The
    # CPU GradScaler is disabled, so the call sequence is reproduced with fairseq's own task code.
    trainer, batches = build_trainer(tiny_data_bin, tmp_path, *STK)
    task, model, crit, opt = trainer.task, trainer.model, trainer.criterion, trainer.optimizer
    pad = task.target_dictionary.pad()
    v0 = token_losses(model, batches[0], pad)
    lam0, _ = kth_largest(v0)
    sample = trainer._prepare_sample(batches[0])[0]
    crit.train()
    for attempt in range(3):
        trainer.zero_grad()
        task.train_step(sample, model, crit, opt, update_num=0)
    opt.multiply_grads(1.0 / sample["ntokens"])
    task.optimizer_step(opt, model=model, update_num=0)
    assert lam_of(trainer) == pytest.approx(lam0 - LR * lam_grad(v0, lam0), abs=1e-5)


def test_model_in_eval_mode_does_not_move_lam(tiny_data_bin, tmp_path):
    trainer, batches = build_trainer(tiny_data_bin, tmp_path, *STK, "--stk-lam-init", "2.5")
    task, model, crit, opt = trainer.task, trainer.model, trainer.criterion, trainer.optimizer
    sample = trainer._prepare_sample(batches[0])[0]
    crit.train()
    model.eval()  # e.g. a user's loop that forgot model.train(): not a training batch for lam
    trainer.zero_grad()
    loss, _, _ = crit(model, sample)
    opt.backward(loss)
    task.optimizer_step(opt, model=model, update_num=0)
    assert lam_of(trainer) == 2.5


@pytest.mark.parametrize("flags,match", [
    (["--stk-k", "215"], "--stk-k 215 cannot fit.*--max-tokens 200"),  # the tiny setting's --max-tokens 200
    (["--stk-k", "150", "--max-tokens-valid", "120"], "--stk-k 150 cannot fit.*--max-tokens-valid 120"),
])
def test_count_k_that_cannot_fit_is_refused_when_fairseq_builds_the_criterion(tiny_data_bin, tmp_path, flags, match):
    with pytest.raises(ValueError, match=match):
        build_trainer(tiny_data_bin, tmp_path, "--criterion", "stk", *flags)
