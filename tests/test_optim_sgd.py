"""SGD and the textbook velocity form against torch.optim.SGD."""

import pytest
import torch
from optim_oracle import (
    compare_with_torch,
    kwargs_id,
    make_params,
    option_grid,
    run,
    run_on_meta,
    state_dict_round_trip,
)

from nnbolts.optim import SGD, SGDVelocity, sgd_init, sgd_step, sgd_velocity_init, sgd_velocity_step

GRID = [
    kw for kw in option_grid(
        lr=[0.01], momentum=[0.0, 0.9], dampening=[0.0, 0.3], weight_decay=[0.0, 0.05],
        nesterov=[False, True], maximize=[False, True], foreach=[False, True])
    if not (kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0))
]


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_sgd_matches_torch_over_300_steps(kwargs, dtype, device):
    compare_with_torch(SGD, torch.optim.SGD, kwargs, dtype=dtype, device=device,
                       state_keys=("momentum_buffer",))


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.01, momentum=0.9), dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1),
], ids=kwargs_id)
def test_sgd_state_dict_round_trip(kwargs, dtype, device):
    state_dict_round_trip(SGD, torch.optim.SGD, kwargs, dtype=dtype, device=device)


@pytest.mark.parametrize("kwargs", [dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01),
                                    dict(lr=0.02, momentum=0.8, dampening=0.5, maximize=True)],
                         ids=kwargs_id)
def test_foreach_path_equals_one_tensor_rule(kwargs):
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    run(lambda ps: SGD(ps, foreach=True, **kwargs), a, 200, negate=kwargs.get("maximize", False))
    run(lambda ps: SGD(ps, foreach=False, **kwargs), b, 200, negate=kwargs.get("maximize", False))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = sgd_init(p)
    opt_p = p.clone().requires_grad_()
    opt = SGD([opt_p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    for _ in range(20):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        p_before, g_before = p.clone(), g.clone()
        buf_before = state.get("momentum_buffer")
        buf_before = None if buf_before is None else buf_before.clone()
        new_p, new_state = sgd_step(p, g, state, lr=0.1, momentum=0.9, nesterov=True,
                                    weight_decay=0.01)
        assert torch.equal(p, p_before) and torch.equal(g, g_before), "inputs were mutated"
        if buf_before is not None:
            assert torch.equal(state["momentum_buffer"], buf_before), "state was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        assert new_p.device == p.device and new_p.dtype == p.dtype
        p, state = new_p, new_state


def test_momentum_buffer_starts_at_first_gradient():
    p, g = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    _, state = sgd_step(p, g, sgd_init(p), lr=0.1, momentum=0.9)
    assert torch.equal(state["momentum_buffer"], g)


def test_velocity_form_equals_torch_with_constant_lr(dtype, device):
    a, b = make_params(dtype, device), make_params(dtype, device)
    run(lambda ps: SGDVelocity(ps, lr=0.01, momentum=0.9), a, 300)
    run(lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), b, 300)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-9 if dtype == torch.float64 else 1e-4, atol=1e-9)


def test_velocity_nesterov_equals_torch_nesterov_with_constant_lr():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    run(lambda ps: SGDVelocity(ps, lr=0.01, momentum=0.9, nesterov=True), a, 300)
    run(lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True), b, 300)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


def test_velocity_form_differs_from_torch_when_lr_changes():
    """The lesson of book/optimizers.md: the two momentum forms part ways under a schedule."""
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    oa = SGDVelocity(a, lr=0.05, momentum=0.9)
    ob = torch.optim.SGD(b, lr=0.05, momentum=0.9)
    run(oa, a, 30, scheduler=torch.optim.lr_scheduler.StepLR(oa, 5, gamma=0.5))
    run(ob, b, 30, scheduler=torch.optim.lr_scheduler.StepLR(ob, 5, gamma=0.5))
    assert max((x - y).abs().max().item() for x, y in zip(a, b)) > 1e-4


def test_velocity_pure_step_example():
    p = torch.tensor([1.0])
    new_p, state = sgd_velocity_step(p, torch.tensor([0.5]), sgd_velocity_init(p), lr=0.1)
    assert torch.allclose(new_p, torch.tensor([0.95]))
    assert torch.allclose(state["velocity"], torch.tensor([-0.05]))


@pytest.mark.parametrize("cls,kwargs", [
    (SGD, dict(lr=0.1)), (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9, foreach=True)), (SGDVelocity, dict(lr=0.1)),
])
def test_meta_device(cls, kwargs):
    run_on_meta(cls, kwargs)


def test_pure_steps_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = sgd_step(p, torch.empty_like(p), {}, lr=0.1, momentum=0.9)
    assert new_p.device.type == "meta" and state["momentum_buffer"].device.type == "meta"
    new_p, state = sgd_velocity_step(p, torch.empty_like(p), sgd_velocity_init(p))
    assert new_p.device.type == "meta" and state["velocity"].device.type == "meta"


def test_works_under_lr_scheduler_and_param_groups():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02}, {"params": ps[2:], "momentum": 0.5}]
    oa = SGD(groups(a), lr=0.01, momentum=0.9)
    ob = torch.optim.SGD(groups(b), lr=0.01, momentum=0.9)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(oa, 100))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(ob, 100))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


P = torch.zeros(3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: SGD([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: SGD([P], lr=0.1, momentum=-1), ValueError, r"Invalid momentum value: -1"),
    (lambda: SGD([P], lr=0.1, weight_decay=-1e-4), ValueError, r"Invalid weight_decay value"),
    (lambda: SGD([P], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"Nesterov momentum requires a momentum and zero dampening"),
    (lambda: SGD([P], lr=0.1, nesterov=True), ValueError, r"Nesterov momentum requires"),
    (lambda: SGD([P], lr="fast"), TypeError, r"Invalid learning rate: expected a number, got str"),
    (lambda: SGDVelocity([P], lr=0.1, momentum=1.0), ValueError, r"Invalid momentum value: 1.0"),
    (lambda: sgd_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64), {},
                      lr=0.1), TypeError, r"expected a floating tensor for param, got torch.int64"),
    (lambda: sgd_step(P, torch.zeros(4), {}, lr=0.1), ValueError,
     r"grad has shape \(4,\) but param has shape \(3,\)"),
    (lambda: sgd_step(P, torch.zeros(3, device="meta"), {}, lr=0.1), ValueError,
     r"grad is on meta but param is on cpu"),
    (lambda: sgd_step(P, torch.zeros(3, dtype=torch.float64), {}, lr=0.1), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: sgd_step(P, P, {"momentum_buffer": torch.zeros(2)}, lr=0.1, momentum=0.9),
     ValueError, r"state\['momentum_buffer'\] has shape"),
    (lambda: sgd_step(P, P, None, lr=0.1), TypeError, r"expected state to be a dict"),
    (lambda: sgd_step([1.0], P, {}, lr=0.1), TypeError, r"expected param to be a torch.Tensor"),
    (lambda: sgd_step(P, P, {}, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
