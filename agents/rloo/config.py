"""Configuration of the RLOO agent: one frozen dataclass, stored in every checkpoint.

>>> config = RLOOConfig(total_steps=8192, num_primers=16, samples_per_primer=4)
>>> config.batch_compositions, config.iterations
(64, 4)
>>> config.env.reward_mode, config.env.key
('music_theory_only', 'C major')
>>> RLOOConfig.from_dict({"key": "G major", "reward_scaler": 1.0}).env.key  # an older checkpoint's
'G major'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from agents.overrides import check_stored_env, config_from_dict, nest_fields
from melody_env.envs.env_config import EnvConfig

REWARD_MODE = "music_theory_only"
"""The env's reward mode in RLOO's default env: the nine rules times ``reward_scaler`` (the KL to
the prior is the agent's)."""
FORMER_ENV_FIELDS = (
    "reward_scaler",
    "key",
    "composition_length",
    "steps_per_bar",
    "primer_context",
    "reward_rnn",
)
"""The env fields an :class:`RLOOConfig` held at its top level before :attr:`RLOOConfig.env`;
:meth:`RLOOConfig.from_dict` moves them into ``env``."""


def default_env() -> EnvConfig:
    """RLOO's task: the env's defaults in ``reward_mode="music_theory_only"``."""
    return EnvConfig(reward_mode=REWARD_MODE)


CREDITS = ("reward_to_go", "composition")
"""How a sampled token is credited: with the return from its step on, or the whole
composition's return (see :func:`agents.rloo.rloo.advantages`)."""


@dataclass(frozen=True)
class RLOOConfig:
    """Everything that defines one RLOO run.

    The objective, per composition of ``L`` steps written after a primer (``s`` =
    ``env.reward_scaler``, ``beta`` = ``kl_coef``, ``pi`` the policy at ``temperature``, ``p`` the
    frozen Note RNN, both over all 38 tokens)::

        J(pi) = E[ sum_t s * r_MT(s_t, a_t) ] - beta * E[ sum_t KL(pi(.|s_t) || p(.|s_t)) ]

    ``r_MT`` is the sum of the paper's nine rules (the env in ``reward_mode="music_theory_only"``
    returns ``s * r_MT``); the KL is computed exactly from the env's ``info["prior_log_probs"]``.
    ``beta_t`` is ``kl_coef`` at every step but the first, which has ``first_step_kl_coef``.

    The defaults come from a search over about 30 configurations (KL weight 0.1-8, discount,
    learning rates, samples per primer, advantage normalisation, position logits, first-step KL,
    the agent's own rule weights, 60-250 iterations; 2,000 sampled compositions each): KL 4
    with a free first step and position logits, 150 steps of 64 primers x 4 samples, learns the
    key, the repetition limit, the tonic start, resolved leaps, motifs without repeating them and
    the autocorrelation goal while keeping 1,500-1,900 distinct openings in 2,000. It does not
    reach the unique-highest/lowest goals (about 49%, the Note RNN's 53-56%) nor an |interval|
    overlap of 0.85 with the corpus (about 0.72): the motif and interval rules pull towards
    sixteenth-note arpeggios, and a KL strong enough to keep the corpus's intervals loses the
    other rules.
    """

    seed: int = 0
    """Seeds the primers (round ``i`` resets its envs from ``(seed, i)``), the sampling of every
    round and the evaluation; the same seed repeats the run exactly on one machine."""
    total_steps: int = 1_228_800
    """Training transitions (tokens placed in training compositions); the run takes
    :attr:`iterations` gradient steps of :attr:`batch_compositions` compositions each (the
    default: 150 steps of 256 compositions, about 30 s on a quiet CPU core; longer runs drift
    into a few stereotyped openings)."""
    num_primers: int = 64
    """Primers (random one-token starts) per batch."""
    samples_per_primer: int = 4
    """``k``: compositions sampled after each primer; each one's baseline is the mean return of
    the other ``k - 1`` (leave-one-out)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    position_logits: bool = True
    """Give the policy a learnt logit per (step of the composition, token), added to the LSTM's
    (zeros at the start): the rules reward the tonic at fixed steps, and the Note RNN has no
    clock."""
    position_learning_rate: float = 0.03
    """Adam step size of the position logits (one number per step and token: a logit must move
    by several units within a short run)."""
    final_learning_rate: float | None = None
    """If set, the step size falls linearly from ``learning_rate`` to this at the last
    iteration; ``None`` keeps it constant."""
    kl_coef: float = 4.0
    """``beta``: weight of the exact per-step KL(pi || Note RNN) in the objective. The
    trade-off of the whole method: 1.5 learns every rule it can and turns the melodies into
    tonic-triad arpeggios; 8 keeps the intervals closer to the corpus but loses key, leaps and
    motifs."""
    first_step_kl_coef: float | None = 0.5
    """KL weight at the composition's first step only (``None``: ``kl_coef``). The Note RNN
    after a random one-token primer knows nothing of the key, so its first token is a poor
    anchor; the rules want the tonic there."""
    kl_in_reward: bool = True
    """Also subtract ``beta * KL`` of the *later* steps from each token's return (the exact
    policy gradient of ``J``: a token changes the states the later KLs are measured at); with
    ``False`` the KL only enters the loss at its own step (a plain regulariser)."""
    gamma: float = 1.0
    """Discount of the returns: a token's return counts the reward ``t' - t`` steps later with
    ``gamma ** (t' - t)`` (1 = the undiscounted objective; less trades bias for variance: the
    rules are mostly local, and the whole rest of a composition is noise for one token)."""
    credit: str = "reward_to_go"
    """``"reward_to_go"``: a token's return is the reward from its step to the end (the rules
    give per-step rewards); ``"composition"``: every token gets the whole composition's return."""
    normalize_advantages: bool = False
    """Divide the advantages by their standard deviation over the batch."""
    rule_weights: dict[str, float] | None = None
    """The agent's own weight of some of the nine rules in its objective (e.g.
    ``{"unique_extremes": 3.0}``; the others keep 1): its score per step is ``s * sum_rule
    weight * rule``. The env's reward stays the paper's; ``None``: the paper's weights."""
    entropy_coef: float = 0.0
    """Weight of an entropy bonus ``+ entropy_coef * H(pi(.|s_t))`` per step (0: none)."""
    temperature: float = 1.0
    """The policy is ``softmax(logits / temperature)``, for training, sampling and evaluation."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    env: EnvConfig = field(default_factory=default_env)
    """The task: the env's arguments (:class:`melody_env.EnvConfig`; default: its defaults in
    ``reward_mode="music_theory_only"``, ``s = reward_scaler = 2``, the paper's ``c = 0.5``).
    ``env.key`` may be ``"any"``: each composition's key drawn by the env at its reset (the
    ``k`` samples of a primer share it); the policy is told each row's key and reads it
    transposed, with position logits per mode (see :class:`~agents.rloo.policy.RLOOPolicy`).
    ``env.primer_context`` primer tokens are visible in the observation
    (:meth:`RLOOPolicy.predict` primes from them); ``env.reward_rnn`` (a path, or ``None`` for
    the shipped one) is the policy's start, the frozen prior and the env's scorer."""
    checkpoint_every: int = 0
    """Checkpoint every this many iterations (besides the end); 0 = only at the end."""
    summary_compositions: int = 1000
    """Compositions sampled (and composed greedily) for ``summary.json`` at the end."""
    eval_num_envs: int = 500
    """Vector envs that compose the summary's compositions."""
    num_samples: int = 16
    """MIDI samples written to ``samples/`` at the end."""
    torch_threads: int = 1
    """Torch intra-op threads for the gradient steps (the rollout runs on one). One: the LSTM
    of 100 units gains little from a second thread, and loses a lot on a busy machine."""
    progress_bar: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        check_stored_env(self.env, "checkpoints")
        positive = ("total_steps", "num_primers", "eval_num_envs", "torch_threads")
        non_negative = ("checkpoint_every", "summary_compositions", "num_samples", "seed")
        for name in positive + non_negative:
            value = getattr(self, name)
            minimum = 1 if name in positive else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        k = self.samples_per_primer
        if not isinstance(k, int) or isinstance(k, bool) or k < 2:
            raise ValueError(
                f"samples_per_primer must be an integer >= 2 (the leave-one-out baseline needs "
                f"another sample), got {k!r}"
            )
        if self.credit not in CREDITS:
            raise ValueError(f"unknown credit {self.credit!r}; choose one of {', '.join(CREDITS)}")
        for name in ("learning_rate", "position_learning_rate", "max_grad_norm", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.rule_weights is not None:
            from melody_env.rewards.rules import RULE_NAMES

            unknown = set(self.rule_weights) - set(RULE_NAMES)
            if unknown:
                raise ValueError(
                    f"unknown rules {sorted(unknown)} in rule_weights; known: {list(RULE_NAMES)}"
                )
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if self.first_step_kl_coef is not None and not self.first_step_kl_coef >= 0:
            raise ValueError(
                f"first_step_kl_coef must be None or >= 0, got {self.first_step_kl_coef!r}"
            )
        for name in ("kl_coef", "entropy_coef"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.env.reward_scaler >= 0:
            raise ValueError(f"env.reward_scaler must be >= 0, got {self.env.reward_scaler!r}")
        if self.final_learning_rate is not None and not self.final_learning_rate > 0:
            raise ValueError(
                f"final_learning_rate must be None or > 0, got {self.final_learning_rate!r}"
            )

    def kl_weights(self) -> list[float]:
        """The KL weight of each step: ``kl_coef``, but ``first_step_kl_coef`` at step 0."""
        first = self.kl_coef if self.first_step_kl_coef is None else self.first_step_kl_coef
        return [first] + [self.kl_coef] * (self.env.composition_length - 1)

    @property
    def batch_compositions(self) -> int:
        """Compositions per gradient step: ``num_primers * samples_per_primer``."""
        return self.num_primers * self.samples_per_primer

    @property
    def iterations(self) -> int:
        """Gradient steps: ``total_steps`` rounded up to whole batches."""
        per_batch = self.batch_compositions * self.env.composition_length
        return -(-self.total_steps // per_batch)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the env's by :meth:`melody_env.EnvConfig.to_dict`)."""
        data = asdict(replace(self, env=default_env()))
        data["env"] = self.env.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> RLOOConfig:
        """Rebuild from :meth:`to_dict` (:func:`agents.overrides.config_from_dict`: unknown fields
        are refused). A config stored before :attr:`env` (its :data:`FORMER_ENV_FIELDS` at the
        top level) loads with them in ``env``; an ``env`` without ``reward_mode`` gets
        :data:`REWARD_MODE`."""
        data = nest_fields(data, "env", FORMER_ENV_FIELDS, {"reward_mode": REWARD_MODE})
        return config_from_dict(cls, data, source=source)
