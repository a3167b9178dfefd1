"""The Note RNN: an LSTM that predicts the next melody token (the paper's reward RNN and prior).

Architecture of Jaques et al. (2017): one-hot tokens (38) -> LSTM (one layer, 100 units) ->
linear head -> 38 logits. The checkpoint is a single ``.safetensors`` file whose metadata carries
the :class:`NoteRNNConfig` as JSON, so it can be rebuilt without code changes and loaded without
unpickling anything.

>>> model = NoteRNN(NoteRNNConfig(hidden_size=8), seed=0)
>>> state = model.initial_state(batch_size=3)
>>> log_probs, state = model.step(torch.tensor([2, 0, 14]), state)
>>> tuple(log_probs.shape), tuple(state[0].shape)
((3, 38), (1, 3, 8))
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from melody_env.atomic import atomic_path
from melody_env.models import lstm_step
from melody_env.music.encoding import NUM_CLASSES

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "note_rnn.safetensors"
"""The shipped, pretrained Note RNN (see ``checkpoints/MODEL_CARD.md``)."""

LSTMState = tuple[torch.Tensor, torch.Tensor]
"""``(h, c)``, each of shape ``[num_layers, batch, hidden_size]``."""

PRIME_BY_STEPS = 16
"""Primers up to this length are read token by token with the fast :meth:`NoteRNN.step`."""


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the setting.

    One env step is a tiny LSTM step: torch's thread pool cannot speed it up, and on a busy
    machine its spinning threads make it ten times slower. Switching costs well under 1 us.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class NoteRNNConfig:
    """Shape of a Note RNN. Stored in every checkpoint."""

    num_classes: int = NUM_CLASSES
    """Vocabulary size; input is one-hot over it and output are logits over it."""
    hidden_size: int = 100
    """LSTM units per layer; the paper used 100 (a ~60k-parameter, ~240 KB model)."""
    num_layers: int = 1
    """Stacked LSTM layers; the paper used one."""
    dropout: float = 0.0
    """Dropout between stacked layers during pretraining only (none at inference or in RL)."""

    def __post_init__(self) -> None:
        for name in ("num_classes", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"NoteRNNConfig.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"NoteRNNConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def from_dict(cls, data: dict) -> NoteRNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown NoteRNNConfig fields {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)


class NoteRNN(nn.Module):
    """LSTM next-token model over the 38-token melody encoding.

    Args:
        config: the architecture.
        seed: if given, initialise the weights from this seed (for tests and fresh training).
    """

    def __init__(self, config: NoteRNNConfig | None = None, seed: int | None = None) -> None:
        super().__init__()
        self.config = config or NoteRNNConfig()
        generator_state = torch.random.get_rng_state() if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        self.lstm = nn.LSTM(
            input_size=self.config.num_classes,
            hidden_size=self.config.hidden_size,
            num_layers=self.config.num_layers,
            dropout=self.config.dropout if self.config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(self.config.hidden_size, self.config.num_classes)
        if generator_state is not None:
            torch.random.set_rng_state(generator_state)

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zero ``(h, c)`` for ``batch_size`` sequences."""
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        weight = self.head.weight
        return (weight.new_zeros(shape), weight.new_zeros(shape))

    def forward(
        self, tokens: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """Logits for the token after each position.

        Args:
            tokens: int64 ``[batch, time]``.
            state: ``(h, c)`` to start from; zeros if ``None``.

        Returns:
            ``logits [batch, time, num_classes]`` and the state after the last position.
        """
        inputs = F.one_hot(tokens, self.config.num_classes).to(self.head.weight.dtype)
        outputs, state = self.lstm(inputs, state)  # outputs: [batch, time, hidden]
        return self.head(outputs), state

    def step(
        self,
        tokens: torch.Tensor,
        state: LSTMState,
        buffers: lstm_step.StepBuffers | None = None,
    ) -> tuple[torch.Tensor, LSTMState]:
        """Consume one token per sequence; return next-token log-probabilities and the new state.

        Runs :mod:`~melody_env.models.lstm_step` (the same maths as :meth:`forward`, without its
        per-call overhead; numpy for a batch of one) on CPU models; no gradient flows.

        Args:
            tokens: int64 ``[batch]``.
            state: ``(h, c)`` from :meth:`initial_state` or a previous step.
            buffers: from :meth:`step_buffers` for this batch size: keep the state and write
                the outputs there instead of in new tensors (faster when other work runs
                between steps; see :class:`~melody_env.models.lstm_step.StepBuffers` for how
                long outputs stay valid). Ignored for a batch of one and where the model needs
                :meth:`forward`.

        Returns:
            ``log_probs [batch, num_classes]`` (log-softmax) and the new state.
        """
        weights = self.step_weights()
        if weights is not None and tokens.shape[0] == 1:
            h, c = (tensor.detach().numpy() for tensor in state)
            log_probs, h, c = lstm_step.step_numpy(weights, tokens.numpy(), h, c)
            return torch.from_numpy(log_probs), (torch.from_numpy(h), torch.from_numpy(c))
        return self._step_batch(weights, tokens, state, buffers)

    def _step_batch(
        self,
        weights: lstm_step.StepWeights | None,
        tokens: torch.Tensor,
        state: LSTMState,
        buffers: lstm_step.StepBuffers | None,
    ) -> tuple[torch.Tensor, LSTMState]:
        with torch.no_grad(), single_threaded():
            if weights is not None:
                return lstm_step.step_torch(weights, tokens, state, buffers)
            logits, state = self.forward(tokens.unsqueeze(1), state)
            return torch.log_softmax(logits[:, 0], dim=-1), state

    def step_arrays(
        self,
        tokens: np.ndarray,
        state: tuple[np.ndarray, np.ndarray],
        buffers: lstm_step.StepBuffers | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """:meth:`step` on numpy arrays (no conversions on the batch-of-one path)."""
        weights = self.step_weights()
        if weights is not None and len(tokens) == 1:
            log_probs, h, c = lstm_step.step_numpy(weights, tokens, *state)
            return log_probs, (h, c)
        tokens = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        state = tuple(torch.from_numpy(x) for x in state)
        log_probs, (h, c) = self._step_batch(weights, tokens, state, buffers)  # weights checked
        return log_probs.numpy(), (h.numpy(), c.numpy())

    def step_buffers(self, batch_size: int) -> lstm_step.StepBuffers | None:
        """Output buffers for :meth:`step` at ``batch_size``; ``None`` where :meth:`step` does
        not use them (a batch of one, or a model that needs :meth:`forward`)."""
        weights = self.step_weights()
        if weights is None or batch_size == 1:
            return None
        return lstm_step.StepBuffers(weights, batch_size)

    def step_weights(self) -> lstm_step.StepWeights | None:
        """The weights arranged for :meth:`step` (:mod:`~melody_env.models.lstm_step`), rebuilt
        after any change to the parameters; ``None`` where the model needs ``forward`` (not on
        the CPU, or dropout being applied)."""
        lstm, head = self._modules["lstm"], self._modules["head"]
        cached = self.__dict__.get("_step_cache")
        if cached is not None and cached.key == lstm_step.weights_key(lstm, head):
            return cached
        if not lstm_step.supports(lstm, head):
            return None
        self.__dict__["_step_cache"] = lstm_step.build(lstm, head)
        return self.__dict__["_step_cache"]

    @torch.no_grad()
    def prime(self, tokens: torch.Tensor, state: LSTMState | None = None):
        """Run over ``tokens [batch, time]``; return the next-token log-probs and the state.

        Short primers (up to :data:`PRIME_BY_STEPS` tokens) go through :meth:`step`, longer ones
        through :meth:`forward`. One-token primers from the initial state (the envs' default
        random primers, a batch per reset) are rows of a table of the first step from every
        token, computed once per set of weights.
        """
        weights = self.step_weights()
        if weights is not None and tokens.shape[1] == 1 and state is None:
            log_probs, (h, c) = self._first_steps(weights)
            index = tokens[:, 0]
            return log_probs[index], (h[:, index], c[:, index])
        if tokens.shape[1] <= PRIME_BY_STEPS and weights is not None:
            state = self.initial_state(tokens.shape[0]) if state is None else state
            for column in tokens.T:
                log_probs, state = self.step(column, state)
            return log_probs, state
        with single_threaded():
            logits, state = self.forward(tokens, state)
            return torch.log_softmax(logits[:, -1], dim=-1), state

    def _first_steps(self, weights: lstm_step.StepWeights) -> tuple[torch.Tensor, LSTMState]:
        """:meth:`step` of every token from the initial state (rebuilt with the weights)."""
        cached = self.__dict__.get("_first_steps_cache")
        if cached is None or cached[0] is not weights:
            classes = self.config.num_classes
            first = self.step(torch.arange(classes), self.initial_state(classes))
            self.__dict__["_first_steps_cache"] = cached = (weights, first)
        return cached[1]

    def save(self, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
        """Write weights and config to one ``.safetensors`` file, atomically."""
        tensors = {
            name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()
        }
        header = {"format": "melody-rl/note-rnn", "config": json.dumps(asdict(self.config))}
        header.update(metadata or {})
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=header)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> NoteRNN:
        """Load a checkpoint written by :meth:`save` (the shipped model if ``path`` is ``None``).

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: the file is not a Note RNN safetensors checkpoint, or its tensors do not
                match the architecture in its config.
        """
        path = Path(path) if path is not None else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"Note RNN checkpoint not found: {path}")
        try:
            tensors = load_file(str(path))
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(
                f"{path} is not a readable safetensors checkpoint ({error}); "
                "Note RNN weights are only loaded from .safetensors files written by NoteRNN.save"
            ) from error
        if header.get("format") != "melody-rl/note-rnn":
            raise ValueError(
                f"{path} is a safetensors file but not a melody-rl Note RNN checkpoint "
                f"(metadata format={header.get('format')!r})"
            )
        if "config" not in header:
            raise ValueError(f"{path} has no NoteRNN config in its metadata (key 'config')")
        try:
            config = NoteRNNConfig.from_dict(json.loads(header["config"]))
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{path}: the NoteRNN config in its metadata is invalid ({error}): "
                f"{header['config']!r}"
            ) from error
        model = cls(config)
        check_tensors(model, tensors, f"{path} (NoteRNN config {config})")
        model.load_state_dict(tensors)
        model.metadata = header
        return model.eval()


def check_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Check that ``tensors`` are exactly ``model``'s state dict: same names, same shapes.

    ``torch``'s own check raises a ``RuntimeError`` naming neither the file nor the fix; this one
    names ``source`` (the file, and the architecture it claims) and what was expected vs found.

    >>> check_tensors(nn.Linear(2, 3), {"weight": torch.zeros(3, 2)}, "a.safetensors")
    Traceback (most recent call last):
    ...
    ValueError: a.safetensors does not match the model: missing tensors ['bias']
    >>> check_tensors(nn.Linear(2, 3), {"weight": torch.zeros(3, 4), "bias": torch.zeros(3)}, "b")
    Traceback (most recent call last):
    ...
    ValueError: b does not match the model: tensor 'weight' has shape (3, 4), expected (3, 2)

    Raises:
        ValueError: a tensor is missing, unexpected or of another shape.
    """
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for name in sorted(set(expected) & set(tensors)):
        found, wanted = tuple(tensors[name].shape), tuple(expected[name].shape)
        if found != wanted:
            problems.append(f"tensor {name!r} has shape {found}, expected {wanted}")
    if problems:
        raise ValueError(f"{source} does not match the model: {'; '.join(problems)}")
