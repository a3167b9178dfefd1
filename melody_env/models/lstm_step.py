"""One inference step of the Note RNN without ``nn.LSTM``'s per-call overhead.

An env step feeds the reward RNN one token per composition. Through ``nn.LSTM`` that costs a
one-hot input, a weight-layout check and a dozen dispatched ops, which dominate for small
batches. Here the input projection of a one-hot token is one row of a table
(``W_ih^T + b_ih + b_hh``) and the four gates come from one matrix product. A batch's matrix
products run in torch and its gate maths in one compiled pass (:func:`step_torch`); a batch of
one, the single env's, runs in one compiled call (:func:`step_one`), whose cost is a fraction
of even numpy's dozen small calls. The maths are ``nn.LSTM``'s (gates ``i, f, g, o``; ``c' = f
c + i g``; ``h' = o tanh(c')``), so results agree with it to float32 rounding.
:meth:`~melody_env.models.note_rnn.NoteRNN.step` uses them; training uses ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class StepWeights:
    """A Note RNN's weights arranged for stepping, gates reordered to ``i, f, o, g`` and the
    ``i, f, o`` columns halved, so that one ``tanh`` over all four gates gives them all
    (``sigmoid(x) = 0.5 tanh(x / 2) + 0.5``).

    Attributes:
        key: identifies the parameters they were built from (see :func:`weights_key`).
        torch_layers: per layer ``(input, W_hh^T, bias)``; ``input`` is the token table
            ``[classes, 4H]`` (biases included) for layer 0, ``W_ih^T`` for the others.
        torch_head: ``(W^T, b)`` of the output layer.
        hidden_size: ``H``.
        gate_rows: float32 ``[classes + layers * H + (layers - 1) * H + layers, 4H]``: the
            token table, each layer's ``W_hh^T``, each upper layer's ``W_ih^T``, each layer's
            bias, stacked in that order (``torch_layers`` are views of it), for
            :func:`step_one`. ``None`` for a float64 model, which :func:`step_torch` steps.
        head_rows: float32 ``[H + 1, classes]``: ``W^T`` of the output layer, then ``b``;
            ``None`` with ``gate_rows``.
    """

    key: tuple
    torch_layers: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]
    torch_head: tuple[torch.Tensor, torch.Tensor]
    hidden_size: int
    gate_rows: np.ndarray | None
    head_rows: np.ndarray | None


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
    """Arrange ``lstm`` and ``head`` weights for :func:`step_torch` and :func:`step_one`."""
    hidden = lstm.hidden_size
    i_f, g, o = slice(0, 2 * hidden), slice(2 * hidden, 3 * hidden), slice(3 * hidden, None)
    order = torch.arange(4 * hidden)
    order = torch.cat([order[i_f], order[o], order[g]])  # (i, f, g, o) -> (i, f, o, g)
    halve = torch.ones(4 * hidden, dtype=lstm.weight_hh_l0.dtype)
    halve[: 3 * hidden] = 0.5
    firsts, recurrents, biases = [], [], []
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}").detach()
        w_hh = getattr(lstm, f"weight_hh_l{layer}").detach()
        bias = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach()
        w_ih_t, w_hh_t, bias = w_ih.t()[:, order], w_hh.t()[:, order], bias[order]
        first = (w_ih_t + bias) if layer == 0 else w_ih_t  # one-hot input: a row per token
        firsts.append(first * halve)
        recurrents.append(w_hh_t * halve)
        biases.append(bias * halve)
    # One array in step_one's order; the torch tensors are views of it.
    classes, layers = len(firsts[0]), len(firsts)
    stacked = torch.cat([firsts[0], *recurrents, *firsts[1:], torch.stack(biases)])
    recurrent_rows, input_rows = classes, classes + layers * hidden
    bias_rows = input_rows + (layers - 1) * hidden

    def rows(start: int, layer: int) -> torch.Tensor:
        return stacked[start + layer * hidden : start + (layer + 1) * hidden]

    torch_layers = tuple(
        (
            stacked[:classes] if layer == 0 else rows(input_rows, layer - 1),
            rows(recurrent_rows, layer),
            stacked[bias_rows + layer],
        )
        for layer in range(layers)
    )
    head_w_t = head.weight.detach().t().contiguous()
    head_b = head.bias.detach().clone()
    float32 = stacked.dtype == torch.float32
    head_rows = torch.cat([head_w_t, head_b[None]])
    return StepWeights(
        key=weights_key(lstm, head),
        torch_layers=torch_layers,
        torch_head=(head_rows[:hidden], head_rows[hidden]),
        hidden_size=hidden,
        gate_rows=stacked.numpy() if float32 else None,
        head_rows=head_rows.numpy() if float32 else None,
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
    tensors, or those of ``buffers`` (the same values bit for bit; see :class:`StepBuffers`).
    Torch multiplies the matrices; a float32 model's gate maths is one compiled pass."""
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
        if weights.gate_rows is not None:  # float32: the gates' maths in one compiled pass
            c_layer = torch.empty_like(c[layer]) if buffers is None else c[layer]
            x = torch.empty_like(h[layer]) if buffers is None else h[layer]
            _update_cell(gates.numpy(), c[layer].detach().numpy(), c_layer.numpy(), x.numpy())
        else:
            gates.tanh_()
            gates[:, :three].mul_(0.5).add_(0.5)  # i, f, o: sigmoids of the unhalved inputs
            cell = gates[:, three:]  # g
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


# error_model="numpy": no zero-division check, which would keep the loops from vectorising;
# fastmath "contract" only: fused multiply-adds (a third faster, as exact or more), while NaN and
# infinity keep their meaning (a broken model's NaN reaches the env's finite-reward check).
_KERNEL_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}


@numba.njit(inline="always", **_KERNEL_OPTIONS)
def _tanh(x):
    """``tanh`` of a float32 within 6 units in the last place: Eigen's rational approximation
    (``generic_fast_tanh_float``), which compiles to vector instructions where a call to the C
    library's ``tanhf`` per element does not (the latter took half of :func:`step_one`)."""
    bound = np.float32(7.90531110763549805)  # tanh is 1 - 2e-7 from here on
    x = min(max(x, -bound), bound)
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    return x * p / q


@numba.njit(**_KERNEL_OPTIONS)
def _update_cell(gates, c, new_c, new_h):
    """The LSTM's gate maths for a batch, float32: ``gates [B, 4H]`` (contiguous; ``i, f, o``
    halved, ``g``: see :class:`StepWeights`; overwritten) and ``c [B, H]`` give ``new_c = f c +
    i g`` and ``new_h = o tanh(new_c)`` (``new_c`` may be ``c``). One vectorised ``tanh`` over
    all the gates and one pass, where torch takes six over the gates' strided column slices."""
    hidden = c.shape[1]
    three = 3 * hidden
    flat = gates.reshape(-1)
    for j in range(flat.size):
        flat[j] = _tanh(flat[j])
    half = np.float32(0.5)
    for b in range(gates.shape[0]):
        row = gates[b]
        for j in range(hidden):
            forget, write = half * row[hidden + j] + half, half * row[j] + half
            cell = forget * c[b, j] + write * row[three + j]
            new_c[b, j] = cell
            new_h[b, j] = (half * row[2 * hidden + j] + half) * _tanh(cell)


@numba.njit(**_KERNEL_OPTIONS)
def step_one(token, gate_rows, head_rows, h, c):
    """:func:`step_torch` for one sequence, compiled: ``token`` an int, ``gate_rows`` and
    ``head_rows`` from :class:`StepWeights`, ``h, c`` float32 ``[layers, 1, H]``.

    Returns:
        New arrays: ``log_probs [1, classes]``, ``h``, ``c``.
    """
    layers, hidden = h.shape[0], h.shape[2]
    width, three = 4 * hidden, 3 * hidden
    classes = head_rows.shape[1]
    if not 0 <= token < classes:  # compiled indexing is unchecked
        raise IndexError("a token outside the model's classes was stepped")
    recurrent = classes  # the first row of layer 0's W_hh^T
    inputs = recurrent + layers * hidden
    biases = inputs + (layers - 1) * hidden
    new_h, new_c = np.empty_like(h), np.empty_like(c)
    gates = np.empty(width, np.float32)
    for layer in range(layers):
        if layer == 0:
            gates[:] = gate_rows[token]  # the one-hot input's row, biases included
        else:
            gates[:] = gate_rows[biases + layer]
            start = inputs + (layer - 1) * hidden
            for k in range(hidden):  # j innermost: a vector loop over contiguous rows
                x = new_h[layer - 1, 0, k]
                for j in range(width):
                    gates[j] += x * gate_rows[start + k, j]
        start = recurrent + layer * hidden
        for k in range(hidden):
            x = h[layer, 0, k]
            for j in range(width):
                gates[j] += x * gate_rows[start + k, j]
        for j in range(width):
            gates[j] = _tanh(gates[j])
        for j in range(three):
            gates[j] = np.float32(0.5) * gates[j] + np.float32(0.5)  # i, f, o
        for j in range(hidden):
            cell = gates[hidden + j] * c[layer, 0, j] + gates[j] * gates[three + j]
            new_c[layer, 0, j] = cell
            new_h[layer, 0, j] = gates[2 * hidden + j] * _tanh(cell)
    log_probs = np.empty((1, classes), np.float32)
    logits = log_probs[0]
    logits[:] = head_rows[hidden]
    for k in range(hidden):
        x = new_h[layers - 1, 0, k]
        for j in range(classes):
            logits[j] += x * head_rows[k, j]
    top = logits.max()
    total = np.float32(0.0)
    for j in range(classes):
        total += np.exp(logits[j] - top)
    logits -= top + np.log(total)
    return log_probs, new_h, new_c
