"""Adadelta against torch.optim.Adadelta."""

import math

import pytest
import torch
from optim_oracle import (
    compare_with_both_torch_paths as oracle_compare_both,
)
from optim_oracle import (
    kwargs_id,
    make_params,
    option_grid,
    run,
    run_on_meta,
    state_dict_round_trip,
)

from nnbolts.optim.adadelta import Adadelta, adadelta_init, adadelta_step

STATE_KEYS = ("step", "square_avg", "acc_delta")

# ``foreach`` is not in the grid: every case is compared with both of torch's paths at once
GRID = option_grid(lr=[1.0], rho=[0.5, 0.9], weight_decay=[0.0, 0.05], maximize=[False, True])


def compare_with_both_torch_paths(kwargs, *, dtype, device, steps=300):
    """Both of torch's paths at once (see optim_oracle)."""
    oracle_compare_both(Adadelta, torch.optim.Adadelta, kwargs, dtype=dtype,
                        device=device, steps=steps, state_keys=STATE_KEYS)


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_adadelta_matches_torch_over_300_steps(kwargs, dtype, device):
    compare_with_both_torch_paths(kwargs, dtype=dtype, device=device)


def test_adadelta_matches_torch_at_other_values(dtype, device):
    """A smaller learning rate, no decay of the averages' memory (ρ = 0) and a large ε."""
    compare_with_both_torch_paths(dict(lr=0.1, rho=0.0, eps=1e-2), dtype=dtype, device=device,
                                  steps=100)


def test_defaults_are_torchs():
    ours = Adadelta(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.Adadelta(make_params(torch.float64, "cpu")).defaults
    assert ours == {k: theirs[k] for k in ours}
    assert set(theirs) - set(ours) == {"capturable", "differentiable"}


def test_adadelta_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=1.0, rho=0.8, weight_decay=0.01)
    state_dict_round_trip(Adadelta, torch.optim.Adadelta, kwargs, dtype=dtype, device=device)


def test_foreach_is_accepted_and_changes_nothing():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    run(lambda ps: Adadelta(ps, foreach=True), a, 30)
    run(lambda ps: Adadelta(ps, foreach=False), b, 30)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_first_step_by_hand():
    """From zero averages: r = (1−ρ)g², u = 0, so Δ = √ε / √((1−ρ)g² + ε) · g."""
    rho, eps = 0.9, 1e-6
    g = torch.tensor([2.0, -0.5, 1e-4], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64)
    new_p, state = adadelta_step(p, g, adadelta_init(p), rho=rho, eps=eps)
    expected = [-math.sqrt(eps) / math.sqrt((1 - rho) * x * x + eps) * x for x in g.tolist()]
    assert new_p.tolist() == pytest.approx(expected, rel=1e-12)
    delta = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(state["acc_delta"], (1 - rho) * delta * delta)
    torch.testing.assert_close(state["square_avg"], (1 - rho) * g * g)


def test_updates_do_not_depend_on_the_scale_of_the_gradient():
    """Δ is a ratio of two RMS values, so multiplying every gradient by 1000 changes nothing
    (while ε is negligible next to the averages): the rule needs no learning rate tuned to the
    size of the gradient."""
    gen = torch.Generator().manual_seed(5)
    grads = torch.randn(100, 4, generator=gen, dtype=torch.float64)
    p1 = p2 = torch.zeros(4, dtype=torch.float64)
    s1, s2 = adadelta_init(p1), adadelta_init(p2)
    for g in grads:
        p1, s1 = adadelta_step(p1, g, s1, eps=1e-12)
        p2, s2 = adadelta_step(p2, 1000.0 * g, s2, eps=1e-12)
    torch.testing.assert_close(p1, p2, rtol=1e-6, atol=0)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    hp = dict(lr=0.5, rho=0.8, weight_decay=0.01, maximize=True)
    state = adadelta_init(p)
    opt_p = p.clone().requires_grad_()
    opt = Adadelta([opt_p], **hp)
    for _ in range(20):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        before = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
        p_before, g_before = p.clone(), g.clone()
        new_p, new_state = adadelta_step(p, g, state, **hp)
        assert torch.equal(p, p_before) and torch.equal(g, g_before), "inputs were mutated"
        assert state["step"] == before["step"], "state was mutated"
        for key in ("square_avg", "acc_delta"):
            assert torch.equal(state[key], before[key]), f"state[{key!r}] was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        for key in ("square_avg", "acc_delta"):
            assert torch.equal(new_state[key], opt.state[opt_p][key])
        assert new_state["step"] == opt.state[opt_p]["step"] == before["step"] + 1
        assert new_p.device == p.device and new_p.dtype == p.dtype
        p, state = new_p, new_state


def test_pure_step_example():
    p, g = torch.tensor([1.0]), torch.tensor([1.0])
    new_p, state = adadelta_step(p, g, adadelta_init(p), rho=0.75, eps=0.375 ** 2)
    assert torch.allclose(new_p, torch.tensor([0.4]))          # Δ = 0.375 / 0.625 · 1 = 0.6
    assert torch.allclose(state["acc_delta"], torch.tensor([0.09]))
    assert torch.equal(state["square_avg"], torch.tensor([0.25])) and state["step"] == 1


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.5, rho=0.5, weight_decay=0.1,
                                                 maximize=True, foreach=True)],
                         ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(Adadelta, kwargs)


def test_pure_steps_on_meta():
    p = torch.empty(4, 3, device="meta", dtype=torch.float64)
    state = adadelta_init(p)
    new_p, state = adadelta_step(p, torch.empty_like(p), state, weight_decay=0.1)
    assert new_p.device.type == "meta" and new_p.dtype == torch.float64
    for key in ("square_avg", "acc_delta"):
        assert state[key].device.type == "meta" and state[key].dtype == torch.float64
    assert state["step"] == 1


def test_works_under_lr_scheduler_and_param_groups():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "rho": 0.5}, {"params": ps[2:], "lr": 0.5}]  # noqa: E731
    oa = Adadelta(groups(a), weight_decay=0.01)
    ob = torch.optim.Adadelta(groups(b), weight_decay=0.01)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.ExponentialLR(oa, 0.98))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.ExponentialLR(ob, 0.98))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


P = torch.zeros(3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Adadelta([P], lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: Adadelta([P], rho=1.5), ValueError, r"Invalid rho value: 1.5"),
    (lambda: Adadelta([P], rho=-0.1), ValueError, r"Invalid rho value: -0.1"),
    (lambda: Adadelta([P], eps=-1e-6), ValueError, r"Invalid epsilon value: -1e-06"),
    (lambda: Adadelta([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: Adadelta([P], rho=None), TypeError, r"Invalid rho value: expected a number"),
    (lambda: adadelta_step(P, P, adadelta_init(P), rho=2), ValueError, r"Invalid rho value: 2"),
    (lambda: adadelta_step(P, P, {"step": 0, "square_avg": P}), ValueError,
     r"state has no 'acc_delta'; create the state with adadelta_init\(param\)"),
    (lambda: adadelta_step(P, P, dict(adadelta_init(P), step=True)), TypeError,
     r"expected state\['step'\] to be an int >= 0, got True"),
    (lambda: adadelta_step(P, P, dict(adadelta_init(P), acc_delta=torch.zeros(3).double())),
     TypeError, r"state\['acc_delta'\] has dtype torch.float64 but param has dtype"),
    (lambda: adadelta_step(P, P, []), TypeError, r"expected state to be a dict, got list"),
    (lambda: adadelta_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                           {"step": 0, "square_avg": torch.zeros(3, dtype=torch.int64),
                            "acc_delta": torch.zeros(3, dtype=torch.int64)}),
     TypeError, r"expected a floating tensor for param, got torch.int64"),
    (lambda: adadelta_step(P, torch.zeros(3, 1), adadelta_init(P)), ValueError,
     r"grad has shape \(3, 1\) but param has shape \(3,\)"),
    (lambda: adadelta_step(P, torch.zeros(3, device="meta"), adadelta_init(P)), ValueError,
     r"grad is on meta but param is on cpu"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
