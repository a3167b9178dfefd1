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
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from melody_env.atomic import atomic_path
from melody_env.models import lstm_step
from melody_env.music.encoding import NUM_CLASSES

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "note_rnn.safetensors"
"""The shipped, pretrained Note RNN (see ``checkpoints/MODEL_CARD.md``)."""

LSTMState = tuple[torch.Tensor, torch.Tensor]
"""``(h, c)``, each of shape ``[num_layers, batch, hidden_size]``."""

MAX_HIDDEN_SIZE = 2048
"""Largest ``hidden_size`` a config may ask for (the paper's model has 100)."""
MAX_LAYERS = 8
"""Most stacked layers a config may ask for (the paper's model has one)."""
MAX_PARAMETERS = 8_000_000
"""Most weights a Note RNN may have (32 MB in float32; the paper's model has 58,438): the
bound on what loading a hostile file allocates before a refusal."""

MAX_BATCH = 65_536
"""Most sequences stepped together (a state of ``2 x layers x 65,536 x H`` floats)."""

PRIME_BY_STEPS = 16
"""Primers up to this length are read token by token with the fast :meth:`NoteRNN.step`."""


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the setting.

    Every torch operation of the env's reward RNN (building, loading, priming and stepping it)
    runs inside this block, for two reasons:

    - speed: one env step is a tiny LSTM step, which torch's thread pool cannot speed up; on a
      busy machine waking (and then spinning) its threads makes a step several times slower.
    - fork safety: torch's OpenMP thread pool is not fork-safe. Once a process has run a
      parallel op, a forked child (Gymnasium's ``AsyncVectorEnv``, SB3's ``SubprocVecEnv``,
      ``multiprocessing`` pools on Linux) that runs another one hangs forever. With one thread
      torch never enters the pool, so the env neither starts it in the parent nor needs it in
      a child.

    The caller's setting is restored on the way out, so its own torch work keeps its threads.
    Switching costs well under 1 us.
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
        if type(self.num_classes) is not int or self.num_classes != NUM_CLASSES:
            raise ValueError(
                f"NoteRNNConfig.num_classes must be {NUM_CLASSES} (the melody encoding's "
                f"vocabulary), got {self.num_classes!r}"
            )
        for name, most in (("hidden_size", MAX_HIDDEN_SIZE), ("num_layers", MAX_LAYERS)):
            value = getattr(self, name)
            if type(value) is not int or not 1 <= value <= most:
                raise ValueError(
                    f"NoteRNNConfig.{name} must be an integer in [1, {most}], got {value!r}"
                )
        if self.parameter_count() > MAX_PARAMETERS:
            raise ValueError(
                f"NoteRNNConfig(hidden_size={self.hidden_size}, num_layers={self.num_layers}) "
                f"has {self.parameter_count():,} parameters, more than the {MAX_PARAMETERS:,} "
                "allowed"
            )
        if type(self.dropout) not in (int, float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"NoteRNNConfig.dropout must be in [0, 1), got {self.dropout!r}")

    def parameter_count(self) -> int:
        """Number of weights: per layer ``4H (input + H + 2)``, plus the head's ``C (H + 1)``."""
        hidden, classes = self.hidden_size, self.num_classes
        first = 4 * hidden * (classes + hidden + 2)
        others = 4 * hidden * (2 * hidden + 2) * (self.num_layers - 1)
        return first + others + classes * (hidden + 1)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name and shape of every tensor of the model's state dict (what a checkpoint holds)."""
        hidden, classes = self.hidden_size, self.num_classes
        shapes = {}
        for layer in range(self.num_layers):
            inputs = classes if layer == 0 else hidden
            shapes[f"lstm.weight_ih_l{layer}"] = (4 * hidden, inputs)
            shapes[f"lstm.weight_hh_l{layer}"] = (4 * hidden, hidden)
            shapes[f"lstm.bias_ih_l{layer}"] = (4 * hidden,)
            shapes[f"lstm.bias_hh_l{layer}"] = (4 * hidden,)
        shapes["head.weight"] = (classes, hidden)
        shapes["head.bias"] = (classes,)
        return shapes

    @classmethod
    def from_dict(cls, data: dict) -> NoteRNNConfig:
        if not isinstance(data, dict):
            raise ValueError(f"a NoteRNNConfig must be a JSON object, got {data!r:.80}")
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
        with single_threaded():  # see single_threaded: no thread pool started or needed
            self._build(seed)

    def _build(self, seed: int | None) -> None:
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(f"batch_size must be an integer, got {batch_size!r}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be in [1, {MAX_BATCH:,}], got {batch_size:,}")
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        weight = self.head.weight
        with single_threaded():
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
        per-call overhead; one compiled call for a batch of one) on CPU models; no gradient
        flows.

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
        if weights is not None and weights.gate_rows is not None and tokens.shape[0] == 1:
            h, c = (tensor.detach().numpy() for tensor in state)
            log_probs, h, c = lstm_step.step_one(
                self._one_token(tokens), weights.gate_rows, weights.head_rows, h, c
            )
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
        if weights is not None and weights.gate_rows is not None and len(tokens) == 1:
            log_probs, h, c = lstm_step.step_one(
                self._one_token(tokens), weights.gate_rows, weights.head_rows, *state
            )
            return log_probs, (h, c)
        tokens = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        state = tuple(torch.from_numpy(x) for x in state)
        log_probs, (h, c) = self._step_batch(weights, tokens, state, buffers)  # weights checked
        return log_probs.numpy(), (h.numpy(), c.numpy())

    def _one_token(self, tokens) -> int:
        """The token of a batch of one, checked: the compiled step's indexing is not."""
        token = int(tokens[0])
        if not 0 <= token < self.config.num_classes:
            raise IndexError(
                f"token {token} is outside the model's classes 0..{self.config.num_classes - 1}"
            )
        return token

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
        with single_threaded():
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
        with single_threaded():  # indexing and stacking are torch ops too (see single_threaded)
            return self._prime(tokens, state)

    def _prime(self, tokens: torch.Tensor, state: LSTMState | None):
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

        Nothing is trusted before it is checked, and nothing is allocated from the file's claims
        before they are checked (see :mod:`~melody_env.models.safetensors_checks`): the file is a
        regular file of at most 64 MB; its config is within :class:`NoteRNNConfig`'s bounds (38
        classes, at most 8 layers of 2,048 units and 8 million weights); the tensor names and
        shapes in its header are exactly those of that config; every tensor is floating (F16,
        BF16 and F64 are converted to float32) and finite. Torch runs on one thread throughout
        (:func:`single_threaded`), so loading in a forked worker is safe.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: any check above failed; the message names the file and the problem.
        """
        from melody_env.models.safetensors_checks import read_checked, read_header

        path = Path(path) if path is not None else DEFAULT_CHECKPOINT
        try:
            header, _entries = read_header(path)
        except ValueError as error:
            raise ValueError(
                f"{error}; Note RNN weights are only loaded from .safetensors files written by "
                "NoteRNN.save"
            ) from error
        except FileNotFoundError:
            raise FileNotFoundError(f"Note RNN checkpoint not found: {path}") from None
        if header.get("format") != "melody-rl/note-rnn":
            raise ValueError(
                f"{path} is a safetensors file but not a melody-rl Note RNN checkpoint "
                f"(metadata format={header.get('format')!r:.80})"
            )
        if "config" not in header:
            raise ValueError(f"{path} has no NoteRNN config in its metadata (key 'config')")
        try:
            config = NoteRNNConfig.from_dict(json.loads(header["config"]))
        except (ValueError, TypeError, RecursionError) as error:
            raise ValueError(
                f"{path}: the NoteRNN config in its metadata is invalid ({error}): "
                f"{header['config']!r:.200}"
            ) from error
        _, tensors = read_checked(
            path, expected=config.tensor_shapes(), source=f"{path} (NoteRNN config {config})"
        )
        model = cls(config)
        with single_threaded(), torch.no_grad():
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
    from melody_env.models.safetensors_checks import shape_problems

    problems = shape_problems(
        {name: tuple(t.shape) for name, t in model.state_dict().items()},
        {name: tuple(t.shape) for name, t in tensors.items()},
    )
    if problems:
        raise ValueError(f"{source} does not match the model: {'; '.join(problems)}")
