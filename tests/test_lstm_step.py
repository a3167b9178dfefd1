"""NoteRNN.step's fast path (melody_env.models.lstm_step) equals the module's forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melody_env.models import NoteRNN, NoteRNNConfig, lstm_step


@pytest.mark.parametrize(
    "config", [NoteRNNConfig(), NoteRNNConfig(hidden_size=8, num_layers=2)], ids=["100", "2x8"]
)
@pytest.mark.parametrize("batch", [1, 7])
def test_fast_rnn_step_matches_forward(config, batch):
    model = NoteRNN(config, seed=0).eval()
    tokens = torch.randint(0, 38, (12, batch), generator=torch.Generator().manual_seed(0))
    state_forward = state_step = model.initial_state(batch)
    state_arrays = tuple(x.numpy() for x in model.initial_state(batch))
    for step_tokens in tokens:
        with torch.no_grad():
            logits, state_forward = model(step_tokens[:, None], state_forward)
        log_probs, state_step = model.step(step_tokens, state_step)
        array_log_probs, state_arrays = model.step_arrays(step_tokens.numpy(), state_arrays)
        expected = torch.log_softmax(logits[:, 0], dim=-1)
        torch.testing.assert_close(log_probs, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(array_log_probs, expected.numpy(), rtol=1e-5, atol=1e-5)
        for got, want in zip(state_step, state_forward, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "config", [NoteRNNConfig(), NoteRNNConfig(hidden_size=8, num_layers=2)], ids=["100", "2x8"]
)
def test_buffered_steps_equal_fresh_ones_and_outputs_outlive_one_step(config):
    model = NoteRNN(config, seed=0).eval()
    buffers = model.step_buffers(5)
    assert model.step_buffers(1) is None  # a batch of one runs in one compiled call
    tokens = torch.randint(0, 38, (10, 5), generator=torch.Generator().manual_seed(1))
    primed = model.prime(tokens[:3].T)[1]
    kept = tuple(t.clone() for t in primed)
    fresh = buffered = primed
    previous = None
    for step_tokens in tokens[3:]:
        want, fresh = model.step(step_tokens, fresh)
        got, buffered = model.step(step_tokens, buffered, buffers)
        assert torch.equal(got, want)  # bit for bit
        assert all(torch.equal(g, w) for g, w in zip(buffered, fresh, strict=True))
        assert buffered[0] is buffers.h and buffered[1] is buffers.c  # the running state
        if previous is not None:  # the previous step's log-probs survive this one
            assert torch.equal(previous[0], previous[1])
        previous = (got, got.clone())
    # The primed state the buffers started from was copied in, not overwritten.
    assert all(torch.equal(t, k) for t, k in zip(primed, kept, strict=True))
    # Stepping from another state again adopts it: the same values as stepping it fresh.
    again, _ = model.step(tokens[3], primed, buffers)
    assert torch.equal(again, model.step(tokens[3], primed)[0])
    with pytest.raises(ValueError, match="shape"):
        model.step(tokens[3], model.initial_state(4), buffers)
    with pytest.raises(ValueError, match="5 sequences, got 4"):
        model.step(tokens[3, :4], model.initial_state(4), buffers)


def test_fast_rnn_step_follows_weight_changes():
    model = NoteRNN(seed=0)
    tokens, state = torch.tensor([14]), model.initial_state(1)
    before, _ = model.step(tokens, state)
    with torch.no_grad():
        model.head.bias[3] += 5.0  # in place, as an optimizer step
    after, _ = model.step(tokens, state)
    assert after[0, 3] > before[0, 3]
    model.load_state_dict(NoteRNN(seed=1).state_dict())
    loaded, _ = model.step(tokens, state)
    expected, _ = NoteRNN(seed=1).step(tokens, state)
    torch.testing.assert_close(loaded, expected)
    model.double()
    assert model.step(tokens.repeat(2), model.initial_state(2))[0].dtype == torch.float64
    dropout = NoteRNN(NoteRNNConfig(hidden_size=4, num_layers=2, dropout=0.5)).train()
    assert dropout.step_weights() is None  # training-time dropout: forward() is used


@pytest.mark.parametrize("head_scale", [1.0, 1000.0], ids=["small-logits", "large-logits"])
def test_batch_of_one_log_softmax_is_exact_for_small_and_large_logits(head_scale):
    """Logits far beyond exp's float32 range (|logit| > 88) still give finite, exact
    log-probabilities: the compiled step shifts by the maximum."""
    model = NoteRNN(seed=0).eval()
    with torch.no_grad():
        model.head.weight.mul_(head_scale)
        model.head.bias.mul_(head_scale)
    state_forward, state_arrays = (
        model.initial_state(1),
        tuple(x.numpy() for x in model.initial_state(1)),
    )
    largest = 0.0
    for token in (14, 0, 37, 1, 21):
        with torch.no_grad():
            logits, state_forward = model(torch.tensor([[token]]), state_forward)
        largest = max(largest, float(logits.abs().max()))
        log_probs, state_arrays = model.step_arrays(np.array([token]), state_arrays)
        expected = torch.log_softmax(logits[:, 0].double(), dim=-1).numpy()
        assert np.isfinite(log_probs).all()
        np.testing.assert_allclose(log_probs, expected, rtol=1e-5, atol=1e-4 * head_scale)
    assert (largest > 88.0) == (head_scale > 1.0)


def test_compiled_tanh_is_within_six_units_in_the_last_place():
    x = np.concatenate(
        [np.linspace(-12, 12, 200_001), np.linspace(-1e-3, 1e-3, 2_001), [0.0, 7.9, -7.9]]
    ).astype(np.float32)
    got = np.array([lstm_step._tanh(value) for value in x[::7]] + [lstm_step._tanh(x[-2])])
    x = np.append(x[::7], x[-2])
    exact = np.tanh(x.astype(np.float64))
    ulps = np.abs(got - exact) / np.spacing(np.abs(exact).astype(np.float32))
    assert ulps.max() <= 6.0


@pytest.mark.parametrize(
    "config", [NoteRNNConfig(), NoteRNNConfig(hidden_size=8, num_layers=2)], ids=["100", "2x8"]
)
@pytest.mark.parametrize("batch", [1, 3])
def test_a_float64_model_steps_in_float64_to_float64_precision(config, batch):
    model = NoteRNN(config, seed=0).eval().double()
    assert model.step_weights().gate_rows is None  # torch's ops, not the float32 kernels
    tokens = torch.randint(0, 38, (5, batch), generator=torch.Generator().manual_seed(2))
    state_step = state_forward = model.initial_state(batch)
    for step_tokens in tokens:
        log_probs, state_step = model.step(step_tokens, state_step)
        with torch.no_grad():
            logits, state_forward = model(step_tokens[:, None], state_forward)
        assert log_probs.dtype == state_step[0].dtype == state_step[1].dtype == torch.float64
        torch.testing.assert_close(log_probs, torch.log_softmax(logits[:, 0], dim=-1))
        for got, want in zip(state_step, state_forward, strict=True):
            torch.testing.assert_close(got, want)


def test_one_token_primes_come_from_a_table_that_follows_the_weights():
    model = NoteRNN(seed=0).eval()
    tokens = torch.tensor([[14], [0], [37], [14]])
    log_probs, (h, c) = model.prime(tokens)
    expected, (h_step, c_step) = model.step(tokens[:, 0], model.initial_state(4))
    torch.testing.assert_close(log_probs, expected)
    torch.testing.assert_close(h, h_step)
    torch.testing.assert_close(c, c_step)
    log_probs[0, 0] = 99.0  # the caller's copy: the table is not touched
    assert model.prime(tokens)[0][0, 0] != 99.0
    with torch.no_grad():
        model.head.bias[5] += 3.0
    shifted, _ = model.prime(tokens)
    assert (shifted[:, 5] > expected[:, 5]).all()


@pytest.mark.parametrize("token", [-1, 38, 10**6])
def test_a_batch_of_one_refuses_a_token_outside_the_classes(token):
    model = NoteRNN(seed=0).eval()
    message = rf"token {token} is outside the model's classes 0\.\.37"
    with pytest.raises(IndexError, match=message):
        model.step(torch.tensor([token]), model.initial_state(1))
    with pytest.raises(IndexError, match=message):
        model.step_arrays(np.array([token]), tuple(x.numpy() for x in model.initial_state(1)))
    weights, state = model.step_weights(), tuple(x.numpy() for x in model.initial_state(1))
    with pytest.raises(IndexError, match="outside the model's classes"):  # the kernel's guard
        lstm_step.step_one(token, weights.gate_rows, weights.head_rows, *state)
