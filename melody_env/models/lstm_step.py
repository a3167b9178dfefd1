"""One inference step of the Note RNN without ``nn.LSTM``'s per-call overhead.

An env step feeds the reward RNN one token per composition. Through ``nn.LSTM`` that costs a
one-hot input, a weight-layout check and a dozen dispatched ops, which dominate for small
batches. Here the input projection of a one-hot token is one row of a table
(``W_ih^T + b_ih + b_hh``), the four gates come from one matrix product, and a batch of one runs
in numpy, whose per-call cost is a fraction of torch's. The maths are ``nn.LSTM``'s (gates
``i, f, g, o``; ``c' = f c + i g``; ``h' = o tanh(c')``), so results agree with it to float32
rounding. :meth:`~melody_env.models.note_rnn.NoteRNN.step` uses it; training uses ``forward``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SAFE_EXP_BOUND = 80.0
"""``exp`` of a float32 in ``[-80, 80]`` is a normal number: with logits bounded by it the
log-softmax needs no shift by the maximum (a reduction that costs a batch of one dearly)."""


@functools.cache
def _ones(size: int) -> np.ndarray:
    return np.ones(size, np.float32)


@dataclass(frozen=True)
class StepWeights:
    """A Note RNN's weights arranged for stepping, gates reordered to ``i, f, o, g``.

    Attributes:
        key: identifies the parameters they were built from (see :func:`weights_key`).
        torch_layers: per layer ``(input, W_hh^T, bias)``; ``input`` is the token table
            ``[classes, 4H]`` (biases included) for layer 0, ``W_ih^T`` for the others.
        numpy_layers: the same as numpy arrays with the ``i, f, o`` columns halved, so that one
            ``tanh`` gives all gates: ``sigmoid(x) = 0.5 * tanh(x / 2) + 0.5``.
        head: ``(W^T, b)`` of the output layer, torch and numpy.
        logit_bound: a bound on ``|logit|``: ``max_j sum_i |W_ji| + |b_j|`` (``|h| < 1``).
    """

    key: tuple
    torch_layers: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]
    numpy_layers: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    torch_head: tuple[torch.Tensor, torch.Tensor]
    numpy_head: tuple[np.ndarray, np.ndarray]
    hidden_size: int
    logit_bound: float


def weights_key(lstm: nn.LSTM, head: nn.Linear) -> tuple:
    """Changes whenever a parameter is replaced, moved or updated in place."""
    params = (*lstm._flat_weights, head._parameters["weight"], head._parameters["bias"])
    return tuple([p._version for p in params] + [p.data_ptr() for p in params])


def supports(lstm: nn.LSTM, head: nn.Linear) -> bool:
    """Whether :func:`build` handles this model (CPU floats, no dropout being applied)."""
    weight = head.weight
    return (
        weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.float64)
        and lstm.bias
        and lstm.proj_size == 0
        and not (lstm.training and lstm.dropout > 0 and lstm.num_layers > 1)
    )


@torch.no_grad()
def build(lstm: nn.LSTM, head: nn.Linear) -> StepWeights:
    """Arrange ``lstm`` and ``head`` weights for :func:`step_torch` and :func:`step_numpy`."""
    hidden = lstm.hidden_size
    i_f, g, o = slice(0, 2 * hidden), slice(2 * hidden, 3 * hidden), slice(3 * hidden, None)
    order = torch.arange(4 * hidden)
    order = torch.cat([order[i_f], order[o], order[g]])  # (i, f, g, o) -> (i, f, o, g)
    torch_layers, numpy_layers = [], []
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}").detach()
        w_hh = getattr(lstm, f"weight_hh_l{layer}").detach()
        bias = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach()
        w_ih_t, w_hh_t, bias = w_ih.t()[:, order], w_hh.t()[:, order], bias[order]
        first = (w_ih_t + bias) if layer == 0 else w_ih_t  # one-hot input: a row per token
        torch_layers.append((first.contiguous(), w_hh_t.contiguous(), bias.contiguous()))
        halve = torch.ones(4 * hidden, dtype=bias.dtype)
        halve[: 3 * hidden] = 0.5
        numpy_layers.append(
            tuple((tensor * halve).numpy() for tensor in (first, w_hh_t, bias))  # copies
        )
    head_w_t = head.weight.detach().t().contiguous()
    head_b = head.bias.detach().clone()
    return StepWeights(
        key=weights_key(lstm, head),
        torch_layers=tuple(torch_layers),
        numpy_layers=tuple(numpy_layers),
        torch_head=(head_w_t, head_b),
        numpy_head=(head_w_t.numpy().copy(), head_b.numpy().copy()),
        hidden_size=hidden,
        logit_bound=float((head_w_t.abs().sum(0) + head_b.abs()).max()),
    )


class StepBuffers:
    """Preallocated state and outputs of :func:`step_torch` for one batch size.

    A step that allocates its outputs (and their temporaries) gets new memory each time, which
    is cold in the caches whenever other work ran since the previous step (an env's rules, its
    observations, an agent). With buffers a step writes into the same few arrays every time,
    and the recurrent state lives in them: each step updates it in place, so a state returned
    by one step is overwritten by the next. A step from any other state (a fresh or primed
    one) first copies it in, without changing the caller's tensors. The log-probabilities
    alternate between two tensors: those of one step stay valid through the next step. Make
    buffers with :meth:`~melody_env.models.note_rnn.NoteRNN.step_buffers`.

    Attributes:
        h, c: ``[layers, B, H]``: the running state.
        log_probs: two ``[B, classes]`` tensors, used in turn.
        gates: one ``[B, 4H]`` tensor per layer (scratch).
        logits: ``[B, classes]`` (scratch).
    """

    __slots__ = ("_turn", "c", "gates", "h", "log_probs", "logits")

    def __init__(self, weights: StepWeights, batch_size: int) -> None:
        dtype = weights.torch_head[1].dtype
        layers, hidden = len(weights.torch_layers), weights.hidden_size
        classes = weights.torch_head[1].shape[0]

        def new(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=dtype)

        self.h, self.c = new(layers, batch_size, hidden), new(layers, batch_size, hidden)
        self.log_probs = (new(batch_size, classes), new(batch_size, classes))
        self.gates = tuple(new(batch_size, 4 * hidden) for _ in range(layers))
        self.logits = new(batch_size, classes)
        self._turn = 0

    def adopt(self, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Make ``state`` the running state (a copy), unless it already is."""
        h, c = state
        if h.shape != self.h.shape:
            raise ValueError(
                f"buffers for states of shape {tuple(self.h.shape)}, got {tuple(h.shape)}"
            )
        if h.data_ptr() != self.h.data_ptr():
            self.h.copy_(h)
        if c.data_ptr() != self.c.data_ptr():
            self.c.copy_(c)

    def next_log_probs(self) -> torch.Tensor:
        """The log-probability tensor of the next step (the one the last step did not use)."""
        self._turn ^= 1
        return self.log_probs[self._turn]


def step_torch(
    weights: StepWeights,
    tokens: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    buffers: StepBuffers | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Log-probabilities ``[B, classes]`` after ``tokens [B]`` and the new ``(h, c)``: new
    tensors, or those of ``buffers`` (the same values bit for bit; see :class:`StepBuffers`)."""
    if buffers is not None:
        if tokens.shape[0] != buffers.h.shape[1]:
            raise ValueError(f"buffers for {buffers.h.shape[1]} sequences, got {tokens.shape[0]}")
        buffers.adopt(state)
        state = (buffers.h, buffers.c)
    h, c = state
    three = 3 * weights.hidden_size
    hidden = weights.hidden_size
    new_h, new_c = [], []
    x = None
    # In place on each layer's gate matrix: fewer [B, 4H] temporaries to allocate and stream
    # through the caches (the same operations, so the same results bit for bit).
    for layer, (first, w_hh_t, bias) in enumerate(weights.torch_layers):
        gates_out = None if buffers is None else buffers.gates[layer]
        # Layer 0's input is one-hot: its rows of ``first`` (biases included).
        if layer == 0:
            gates = torch.index_select(first, 0, tokens, out=gates_out)
        else:
            gates = torch.addmm(bias, x, first, out=gates_out)
        gates.addmm_(h[layer], w_hh_t)  # the last read of h[layer]: it may be overwritten now
        gates[:, :three].sigmoid_()  # i, f, o
        cell = gates[:, three:].tanh_()  # g
        if buffers is None:
            c_layer = gates[:, hidden : 2 * hidden] * c[layer]
        else:  # f * c in place: the same product
            c_layer = c[layer].mul_(gates[:, hidden : 2 * hidden])
        c_layer.addcmul_(gates[:, :hidden], cell)
        h_out = None if buffers is None else h[layer]
        x = torch.tanh(c_layer, out=h_out).mul_(gates[:, 2 * hidden : three])
        new_h.append(x)
        new_c.append(c_layer)
    if buffers is not None:
        logits = torch.addmm(weights.torch_head[1], x, weights.torch_head[0], out=buffers.logits)
        return torch.log_softmax(logits, dim=-1, out=buffers.next_log_probs()), (h, c)
    logits = torch.addmm(weights.torch_head[1], x, weights.torch_head[0])
    if len(new_h) == 1:
        return logits.log_softmax(dim=-1), (x.unsqueeze(0), c_layer.unsqueeze(0))
    return logits.log_softmax(dim=-1), (torch.stack(new_h), torch.stack(new_c))


def step_numpy(
    weights: StepWeights, tokens: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`step_torch` for one sequence in numpy: ``tokens [1]``, ``h, c [layers, 1, H]``."""
    three = 3 * weights.hidden_size
    hidden = weights.hidden_size
    layers = []
    x = None
    for layer, (first, w_hh_t, bias) in enumerate(weights.numpy_layers):
        gates = np.dot(h[layer], w_hh_t)
        if layer == 0:
            gates += first[tokens[0]]  # a view of the token's row
        else:
            gates += np.dot(x, first)
            gates += bias
        np.tanh(gates, gates)
        sig = gates[:, :three]
        sig *= 0.5
        sig += 0.5
        c_layer = sig[:, hidden : 2 * hidden] * c[layer]
        c_layer += sig[:, :hidden] * gates[:, three:]
        x = sig[:, 2 * hidden :] * np.tanh(c_layer)
        layers.append((x, c_layer))
    logits = np.dot(x, weights.numpy_head[0])
    logits += weights.numpy_head[1]
    if weights.logit_bound < SAFE_EXP_BOUND:  # exp cannot overflow or underflow to 0
        logits -= np.float32(math.log(np.dot(np.exp(logits[0]), _ones(logits.shape[1]))))
    else:
        logits -= logits.max()
        logits -= np.log(np.exp(logits).sum())
    if len(layers) == 1:
        return logits, x[None], c_layer[None]
    return logits, np.stack([h for h, _ in layers]), np.stack([c for _, c in layers])
