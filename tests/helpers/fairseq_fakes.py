"""A stand-in for a fairseq model in criterion unit tests (not a test module)."""

import torch


class LogitModel(torch.nn.Module):
    """A 'model' whose output is a trainable (B, T, V) logit tensor: gradients land on it."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())

    def forward(self, **net_input):
        return (self.logits, None)

    def get_normalized_probs(self, net_output, log_probs=True):
        return torch.log_softmax(net_output[0].float(), dim=-1)

    def get_targets(self, sample, net_output):
        return sample["target"]
