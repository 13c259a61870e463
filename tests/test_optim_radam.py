"""RAdam against torch.optim.RAdam: bit-identical after every step on CPU (torch's operations in
torch's order, including its reciprocal-then-multiply for the adaptive rate), close to torch's
multi-tensor path, state dicts both ways, the rectification by hand, the pure step, meta, bad
input. The trajectories run in lockstep (one gradient per step for both sides)."""

import functools
import math

import pytest
import torch
from optim_lockstep import (
    assert_same_under_scheduler,
    dense_grads,
    exact_on,
    lockstep,
    state_dict_handover,
)
from optim_oracle import check_pure_step, kwargs_id, make_params, option_grid, run, run_on_meta

from nnbolts.optim.radam import RAdam, radam_init, radam_rectification, radam_step

# Decoupled decay of zero is the same rule as L2 decay of zero: that combination is left out.
GRID = [
    kw for kw in option_grid(lr=[0.01], weight_decay=[0, 0.05],
                             decoupled_weight_decay=[False, True], maximize=[False, True])
    if kw["weight_decay"] or not kw["decoupled_weight_decay"]
]
STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


def compare(kwargs, dtype, device, *, foreach=False, steps=300):
    """``steps`` steps in lockstep with torch's one-tensor (or multi-tensor) path; on CPU every
    parameter and state tensor equal after every step."""
    grads = functools.partial(dense_grads, negate=kwargs.get("maximize", False))
    lockstep(lambda ps: RAdam(ps, foreach=foreach, **kwargs),
             lambda ps: torch.optim.RAdam(ps, foreach=foreach, **kwargs),
             make_params(dtype, device), grads, steps=steps, exact=exact_on(device),
             state_keys=STATE_KEYS, where=f"RAdam({kwargs_id(kwargs)}, foreach={foreach})")


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_radam_matches_torch_over_300_steps(kwargs, dtype, device):
    compare(kwargs, dtype, device)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05, decoupled_weight_decay=True,
         maximize=True),
    dict(lr=0.02, weight_decay=0.05, maximize=True),
    dict(lr=torch.tensor(0.02), weight_decay=0.05),
], ids=kwargs_id)
def test_multi_tensor_path_matches_torchs(kwargs, dtype, device):
    compare(kwargs, dtype, device, foreach=True)


def test_the_two_paths_agree():
    """The multi-tensor path forms √(1−β₂ᵗ)·r_t/(√v+ϵ) in another order (as torch's does): a
    few ulps from the one-tensor path, within the oracle's float64 tolerance after 300 steps."""
    lockstep(lambda ps: RAdam(ps, lr=0.02, weight_decay=0.05, foreach=True),
             lambda ps: RAdam(ps, lr=0.02, weight_decay=0.05, foreach=False),
             make_params(torch.float64, "cpu"), dense_grads, exact=False, state_keys=STATE_KEYS)


def test_multi_tensor_path_with_mixed_dtypes_and_step_counts():
    """float32 and float64 parameters in one group (one multi-tensor call per dtype), and a
    parameter whose gradient appears later (its own step count), as in torch."""
    def params():
        ps = make_params(torch.float64, "cpu")
        return [ps[0], ps[1].float(), ps[2], ps[3].float()]

    def grads(ps, k):
        for i, p in enumerate(ps):
            with torch.no_grad():
                p.grad = (p - 0.1 * (i + 1)) * (k % 7 + 1) / 7 if i < 3 or k >= 20 else None

    lockstep(lambda ps: RAdam(ps, foreach=True, betas=(0.9, 0.9)), lambda ps: torch.optim.RAdam(
        ps, foreach=True, betas=(0.9, 0.9)), params(), grads, steps=50, state_keys=STATE_KEYS)


def test_beta2_decides_when_rectification_starts():
    """β₂ = 0.5: ℓ_∞ = 3 < 5, so RAdam never rectifies (plain momentum steps throughout);
    β₂ = 0.9: ℓ_∞ = 19 and rectified steps start at step 6. Both match torch."""
    assert all(radam_rectification(t, 0.5) is None for t in range(1, 300))
    assert radam_rectification(5, 0.9) is None and radam_rectification(6, 0.9) is not None
    for betas in ((0.9, 0.5), (0.0, 0.9)):
        compare(dict(lr=0.01, betas=betas), torch.float64, "cpu", steps=50)


def test_defaults_are_torchs():
    ours = RAdam(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.RAdam(make_params(torch.float64, "cpu")).defaults
    assert ours == theirs


def test_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)
    state_dict_handover(RAdam, torch.optim.RAdam, kwargs, make_params(dtype, device),
                        functools.partial(dense_grads, negate=True), exact=exact_on(device))


def test_state_crosses_to_torch_and_back_with_torchs_types():
    params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: RAdam(ps, lr=0.01), params, 7)
    state = ours.state[params[0]]
    theirs = torch.optim.RAdam(params, lr=0.01)
    theirs.load_state_dict(ours.state_dict())
    assert list(state) == list(theirs.state[params[0]]) == ["step", "exp_avg", "exp_avg_sq"]
    assert state["step"] == 7 and torch.is_tensor(theirs.state[params[0]]["step"])
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]
    back = RAdam(params, lr=0.01)
    back.load_state_dict(theirs.state_dict())
    assert back.state[params[0]]["step"] == 7 and isinstance(back.state[params[0]]["step"], int)


def test_works_under_lr_scheduler_and_param_groups():
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "weight_decay": 0.1, "decoupled_weight_decay": True}]
    assert_same_under_scheduler(RAdam, torch.optim.RAdam, groups,
                                lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100))


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, betas=(0.8, 0.95), weight_decay=0.01, maximize=True)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = radam_init(p)
    opt_p = p.clone().requires_grad_()
    opt = RAdam([opt_p], **kwargs)
    check_pure_step(radam_step, p, state, opt, kwargs, gen)


def test_steps_by_hand():
    """Momentum steps η m̂ while ℓ_t ≤ 5, then η r_t m̂ √(1−β₂ᵗ)/(√v+ϵ), in Python floats."""
    lr, b1, b2, eps = 0.1, 0.9, 0.9, 1e-8
    rho_inf = 2 / (1 - b2) - 1
    p = torch.tensor([1.0], dtype=torch.float64)
    state = radam_init(p)
    theta, m, v, rectified = 1.0, 0.0, 0.0, []
    for t in range(1, 12):
        g = 0.5 + 0.1 * t
        p, state = radam_step(p, torch.tensor([g], dtype=torch.float64), state, lr=lr,
                              betas=(b1, b2), eps=eps)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t > 5:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                          / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            theta -= lr * r * m_hat * math.sqrt(1 - b2 ** t) / (math.sqrt(v) + eps)
            assert radam_rectification(t, b2) == pytest.approx(r, rel=1e-14)
        else:
            theta -= lr * m_hat
            assert radam_rectification(t, b2) is None
        rectified.append(rho_t > 5)
        assert p.item() == pytest.approx(theta, rel=1e-13)
    assert rectified[0] is False and rectified[-1] is True  # both branches were taken


def test_rectification_grows_towards_one():
    values = [radam_rectification(t, 0.999) for t in (10, 100, 1000, 10000, 100000)]
    assert all(0 < a < b <= 1 for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kwargs", [{}, dict(weight_decay=0.1, decoupled_weight_decay=True,
                                             maximize=True, foreach=True)], ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(RAdam, kwargs, steps=8)  # past the switch to rectified steps


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = radam_step(p, torch.empty_like(p), radam_init(p), weight_decay=0.1)
    assert new_p.device.type == "meta" and state["step"] == 1
    assert state["exp_avg"].device.type == "meta" and state["exp_avg_sq"].device.type == "meta"


P = torch.zeros(3)
STATE = radam_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: RAdam([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: RAdam([P], lr=torch.tensor([0.1, 0.2])), ValueError,
     r"Tensor lr must be 1-element"),
    (lambda: RAdam([P], lr=None), TypeError,
     r"Invalid learning rate: expected a number, got NoneType"),
    (lambda: RAdam([P], eps=-1.0), ValueError, r"Invalid epsilon value: -1.0"),
    (lambda: RAdam([P], betas=(1.0, 0.9)), ValueError,
     r"Invalid beta parameter at index 0: 1.0"),
    (lambda: RAdam([P], betas=(0.9, 1.5)), ValueError,
     r"Invalid beta parameter at index 1: 1.5"),
    (lambda: RAdam([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: RAdam([P], capturable=True), ValueError,
     r"capturable=True is not supported by nnbolts: the step count is a Python int"),
    (lambda: RAdam([P], differentiable=True), ValueError,
     r"differentiable=True is not supported by nnbolts"),
    (lambda: radam_step(P, P, STATE, eps=float("nan")), ValueError, r"Invalid epsilon value: nan"),
    (lambda: radam_step(P, torch.zeros(3, dtype=torch.float64), STATE), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: radam_step(P, P, {"step": 0, "exp_avg": P}), ValueError,
     r"state has no 'exp_avg_sq'; create the state with radam_init\(param\)"),
    (lambda: radam_step(P, P, STATE | {"step": -1}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got -1"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
