"""RMSProp with Nesterov momentum (Algorithm 8.6 of the Deep Learning book): no torch
equivalent, so against a trajectory computed by hand and a line-by-line transcription of the
algorithm."""

import math

import pytest
import torch

from nnbolts.optim import (
    rmsprop_init,
    rmsprop_nesterov_init,
    rmsprop_nesterov_lookahead,
    rmsprop_nesterov_step,
    rmsprop_step,
)


def _run(theta, grad_fn, steps, **hp):
    state = rmsprop_nesterov_init(theta)
    params = []
    for _ in range(steps):
        interim = rmsprop_nesterov_lookahead(theta, state, momentum=hp.get("momentum", 0.9))
        theta, state = rmsprop_nesterov_step(theta, grad_fn(interim), state, **hp)
        params.append(theta)
    return params, state


def test_a_trajectory_computed_by_hand():
    """f(θ) = θ², θ = 1, η = 0.1, ρ = 0.75, μ = 0.5, ε = 0.
    Step 1: θ̃ = 1, g = 2, r = 0.25·4 = 1, v = −0.1·2/1 = −0.2, θ = 0.8.
    Step 2: θ̃ = 0.8 + 0.5·(−0.2) = 0.7, g = 1.4, r = 0.75 + 0.25·1.96 = 1.24,
    v = −0.1 − 0.1·1.4/√1.24 = −0.2257237, θ = 0.5742763."""
    params, state = _run(torch.tensor([1.0], dtype=torch.float64), lambda t: 2 * t, 2,
                         lr=0.1, rho=0.75, momentum=0.5, eps=0.0)
    assert params[0].item() == pytest.approx(0.8, abs=1e-12)
    assert params[1].item() == pytest.approx(0.5742763, abs=1e-7)
    assert state["square_avg"].item() == pytest.approx(1.24, abs=1e-12)
    assert state["velocity"].item() == pytest.approx(-0.2257237, abs=1e-7)
    assert state["step"] == 2 and type(state["step"]) is int


def _transcription(theta, grad_fn, steps, *, lr, rho, alpha, delta):
    """Algorithm 8.6 line by line, on Python floats, one coordinate at a time (ε of the book is
    lr here, α is the momentum; delta inside the root as in Algorithm 8.5)."""
    n = len(theta)
    v, r = [0.0] * n, [0.0] * n
    out = []
    for _ in range(steps):
        interim = [theta[i] + alpha * v[i] for i in range(n)]       # θ̃ ← θ + αv
        g = grad_fn(interim)                                       # g at the interim point
        r = [rho * r[i] + (1 - rho) * g[i] * g[i] for i in range(n)]
        v = [alpha * v[i] - lr / math.sqrt(delta + r[i]) * g[i] for i in range(n)]
        theta = [theta[i] + v[i] for i in range(n)]                # θ ← θ + v
        out.append(theta)
    return out


@pytest.mark.parametrize("hp", [dict(lr=0.05, rho=0.9, momentum=0.9, eps=1e-6),
                                dict(lr=0.01, rho=0.5, momentum=0.0, eps=1e-3),
                                dict(lr=0.1, rho=0.99, momentum=0.7, eps=0.0)])
def test_matches_a_transcription_of_algorithm_8_6(hp):
    """A badly conditioned quadratic f(θ) = ½ Σ h_i θ_i², with the gradient at the interim point."""
    h = [10.0, 1.0, 0.1, 3.0]
    start = [1.0, -2.0, 0.5, 0.3]
    expected = _transcription(start, lambda t: [h[i] * t[i] for i in range(4)], 60,
                              lr=hp["lr"], rho=hp["rho"], alpha=hp["momentum"], delta=hp["eps"])
    H = torch.tensor(h, dtype=torch.float64)
    params, _ = _run(torch.tensor(start, dtype=torch.float64), lambda t: H * t, 60, **hp)
    for got, want in zip(params, expected):
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64),
                                   rtol=1e-12, atol=1e-12)


def test_pure_and_keeps_dtype_and_device(dtype, device):
    p = torch.randn(3, 2, dtype=dtype, device=device)
    g = torch.randn(3, 2, dtype=dtype, device=device)
    state = rmsprop_nesterov_init(p)
    before = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    p0 = p.clone()
    new, new_state = rmsprop_nesterov_step(p, g, state)
    assert torch.equal(p, p0) and state["step"] == 0
    assert all(torch.equal(state[k], before[k]) for k in ("square_avg", "velocity"))
    assert new.dtype == dtype and new.device == p.device
    assert new_state["velocity"].dtype == dtype and new_state["step"] == 1


def test_without_momentum_it_is_rmsprop_with_eps_inside_the_root():
    """μ = 0: θ ← θ − η g / √(ε + r); torch's RMSprop puts ε outside, so with ε = 0 they agree."""
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(5, dtype=torch.float64, generator=gen)
    a, a_state, b, b_state = p, rmsprop_nesterov_init(p), p, rmsprop_init(p)
    for _ in range(10):
        g = torch.randn(5, dtype=torch.float64, generator=gen)
        a, a_state = rmsprop_nesterov_step(a, g, a_state, lr=0.01, rho=0.8, momentum=0.0, eps=0.0)
        b, b_state = rmsprop_step(b, g, b_state, lr=0.01, alpha=0.8, eps=0.0)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_invalid_arguments():
    p = torch.zeros(2)
    with pytest.raises(ValueError):
        rmsprop_nesterov_step(p, p, rmsprop_nesterov_init(p), momentum=1.0)
    with pytest.raises(ValueError):
        rmsprop_nesterov_step(p, p, rmsprop_nesterov_init(p), rho=1.5)
    with pytest.raises(ValueError, match="rmsprop_nesterov_init"):
        rmsprop_nesterov_step(p, p, {"step": 0})
