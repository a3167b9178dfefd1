"""The three networks of the RL Tuner, all copies of one pretrained Note RNN.

- ``q_network``: trained; its 38 outputs are read as Q (or Psi, or G) values.
- ``target_q_network``: a slowly following copy, ``theta- <- (1 - eta) theta- + eta theta`` after
  every gradient step; never trained directly.
- ``reward_rnn``: the frozen prior ``p(a | s)``. Its parameters have ``requires_grad=False``, it
  is never given to the optimiser and only runs under ``torch.no_grad`` (the original let
  G-learning's gradient flow into it).
"""

from __future__ import annotations

import copy

import torch

from melody_env.models.note_rnn import NoteRNN


def freeze(model: NoteRNN) -> NoteRNN:
    """Put ``model`` in eval mode with every parameter frozen; return it."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def build_networks(note_rnn: NoteRNN) -> tuple[NoteRNN, NoteRNN, NoteRNN]:
    """``(q_network, target_q_network, reward_rnn)``, three independent copies of ``note_rnn``."""
    q_network = copy.deepcopy(note_rnn).train()
    for parameter in q_network.parameters():
        parameter.requires_grad_(True)
    target_q_network = freeze(copy.deepcopy(note_rnn))
    reward_rnn = freeze(copy.deepcopy(note_rnn))
    return q_network, target_q_network, reward_rnn


@torch.no_grad()
def soft_update(target: torch.nn.Module, online: torch.nn.Module, rate: float) -> None:
    """``target <- (1 - rate) * target + rate * online``, parameter by parameter."""
    for target_parameter, parameter in zip(target.parameters(), online.parameters(), strict=True):
        target_parameter.lerp_(parameter, rate)
