"""Adamax against torch.optim.Adamax: bit-identical after every step on CPU (torch's operations in
torch's order), against both of torch's paths, state dicts both ways, the pure step, meta, bad
input. The trajectories run in lockstep (one gradient per step for both sides)."""

import functools

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

from nnbolts.optim.adamax import Adamax, adamax_init, adamax_step

GRID = option_grid(lr=[0.01], weight_decay=[0, 0.05], maximize=[False, True])
STATE_KEYS = ("step", "exp_avg", "exp_inf")


def compare(kwargs, dtype, device, *, foreach=False, steps=300):
    """300 steps in lockstep with torch's one-tensor (or multi-tensor) path; on CPU every
    parameter and state tensor is equal after every step."""
    grads = functools.partial(dense_grads, negate=kwargs.get("maximize", False))
    lockstep(lambda ps: Adamax(ps, foreach=foreach, **kwargs),
             lambda ps: torch.optim.Adamax(ps, foreach=foreach, **kwargs),
             make_params(dtype, device), grads, steps=steps, exact=exact_on(device),
             state_keys=STATE_KEYS, where=f"Adamax({kwargs_id(kwargs)}, foreach={foreach})")


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_adamax_matches_torch_over_300_steps(kwargs, dtype, device):
    compare(kwargs, dtype, device)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05, maximize=True),
    dict(lr=0.02, weight_decay=0.05),
    dict(lr=torch.tensor(0.02)),  # torch's multi-tensor path reads a tensor lr as a number
], ids=kwargs_id)
def test_multi_tensor_path_matches_torchs(kwargs, dtype, device):
    compare(kwargs, dtype, device, foreach=True)


def test_the_two_paths_compute_the_same_numbers():
    """As torch's two paths, ours perform the same operations per tensor: equal on CPU."""
    params = make_params(torch.float64, "cpu")
    lockstep(lambda ps: Adamax(ps, lr=0.02, weight_decay=0.05, foreach=True),
             lambda ps: Adamax(ps, lr=0.02, weight_decay=0.05, foreach=False), params,
             dense_grads, steps=100, state_keys=STATE_KEYS)


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

    lockstep(lambda ps: Adamax(ps, foreach=True), lambda ps: torch.optim.Adamax(
        ps, foreach=True), params(), grads, steps=50, state_keys=STATE_KEYS)


def test_defaults_are_torchs():
    ours = Adamax(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.Adamax(make_params(torch.float64, "cpu")).defaults
    assert ours == theirs


def test_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=0.01, weight_decay=0.05, maximize=True)
    state_dict_handover(Adamax, torch.optim.Adamax, kwargs, make_params(dtype, device),
                        functools.partial(dense_grads, negate=True), exact=exact_on(device))


def test_state_crosses_to_torch_and_back_with_torchs_types():
    params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: Adamax(ps, lr=0.01), params, 7)
    state = ours.state[params[0]]
    theirs = torch.optim.Adamax(params, lr=0.01)
    theirs.load_state_dict(ours.state_dict())
    assert list(state) == list(theirs.state[params[0]]) == ["step", "exp_avg", "exp_inf"]
    assert state["step"] == 7 and torch.is_tensor(theirs.state[params[0]]["step"])
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]
    back = Adamax(params, lr=0.01)
    back.load_state_dict(theirs.state_dict())
    assert back.state[params[0]]["step"] == 7 and isinstance(back.state[params[0]]["step"], int)


def test_works_under_lr_scheduler_and_param_groups():
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "betas": (0.5, 0.9), "weight_decay": 0.1}]
    assert_same_under_scheduler(Adamax, torch.optim.Adamax, groups,
                                lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100))


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, betas=(0.8, 0.95), weight_decay=0.01, maximize=True)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = adamax_init(p)
    opt_p = p.clone().requires_grad_()
    opt = Adamax([opt_p], **kwargs)
    check_pure_step(adamax_step, p, state, opt, kwargs, gen)


def test_first_steps_by_hand():
    """u is a decaying maximum of |g| + ϵ, and the step is η m / ((1−β₁ᵗ) u)."""
    lr, b1, b2, eps = 0.1, 0.9, 0.5, 1e-3
    p = torch.tensor([1.0], dtype=torch.float64)
    state = adamax_init(p)
    theta, m, u = 1.0, 0.0, 0.0
    for t, g in enumerate([0.5, 0.1, -2.0], start=1):
        p, state = adamax_step(p, torch.tensor([g], dtype=torch.float64), state, lr=lr,
                               betas=(b1, b2), eps=eps)
        m = b1 * m + (1 - b1) * g
        u = max(b2 * u, abs(g) + eps)
        theta -= lr / (1 - b1 ** t) * m / u
        assert state["exp_inf"].item() == pytest.approx(u, rel=1e-15)
        assert p.item() == pytest.approx(theta, rel=1e-14)


@pytest.mark.parametrize("kwargs", [{}, dict(weight_decay=0.1, maximize=True, foreach=True)],
                         ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(Adamax, kwargs)


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = adamax_step(p, torch.empty_like(p), adamax_init(p), weight_decay=0.1)
    assert new_p.device.type == "meta" and state["step"] == 1
    assert state["exp_avg"].device.type == "meta" and state["exp_inf"].device.type == "meta"


P = torch.zeros(3)
STATE = adamax_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Adamax([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: Adamax([P], lr=torch.tensor([0.1, 0.2])), ValueError,
     r"Tensor lr must be 1-element"),
    (lambda: Adamax([P], lr="fast"), TypeError,
     r"Invalid learning rate: expected a number, got str"),
    (lambda: Adamax([P], eps=-1.0), ValueError, r"Invalid epsilon value: -1.0"),
    (lambda: Adamax([P], betas=(1.0, 0.9)), ValueError,
     r"Invalid beta parameter at index 0: 1.0"),
    (lambda: Adamax([P], betas=(0.9, -0.1)), ValueError,
     r"Invalid beta parameter at index 1: -0.1"),
    (lambda: Adamax([P], betas=0.9), ValueError, r"Invalid betas: 0.9"),
    (lambda: Adamax([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: Adamax([P], capturable=True), ValueError,
     r"capturable=True is not supported by nnbolts: the step count is a Python int"),
    (lambda: Adamax([P], differentiable=True), ValueError,
     r"differentiable=True is not supported by nnbolts"),
    (lambda: adamax_step(P, P, STATE, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: adamax_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: adamax_step(P, P, {"step": 0, "exp_avg": P}), ValueError,
     r"state has no 'exp_inf'; create the state with adamax_init\(param\)"),
    (lambda: adamax_step(P, P, STATE | {"step": 1.0}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 1.0"),
    (lambda: adamax_step(P, P, adamax_init(torch.zeros(4))), ValueError,
     r"state\['exp_avg'\] has shape \(4,\) but param has shape \(3,\)"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
