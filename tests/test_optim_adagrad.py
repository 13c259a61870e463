"""Adagrad against torch.optim.Adagrad, and its self-annealing 1/√t step."""

import math

import pytest
import torch
from optim_oracle import (
    assert_same_state,
    assert_same_trajectory,
    kwargs_id,
    make_params,
    option_grid,
    run,
    run_on_meta,
    state_dict_round_trip,
)

from nnbolts.optim.adagrad import Adagrad, adagrad_init, adagrad_step

# ``foreach`` is not in the grid: every case is compared with both of torch's paths at once
GRID = option_grid(lr=[0.05], lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.05],
                   initial_accumulator_value=[0.0, 0.1], maximize=[False, True])


def compare_with_both_torch_paths(kwargs, *, dtype, device, steps=300):
    """``compare_with_torch`` for Adagrad, against torch's one-tensor path (``foreach=False``)
    and its multi-tensor path (``foreach=True``).

    nnbolts' Adagrad always runs the one-tensor rule, so one run of it serves both comparisons:
    a quarter less time than two ``compare_with_torch`` calls, and the grid keeps every option.
    Torch creates the state of every parameter in the constructor, so the parameter that never
    gets a gradient has state on both sides; the check is that it kept its initial value.
    """
    negate = bool(kwargs.get("maximize", False))
    p_ours = make_params(dtype, device)
    ours = run(lambda ps: Adagrad(ps, **kwargs), p_ours, steps, negate=negate)
    for foreach in (False, True):
        p_theirs = make_params(dtype, device)
        theirs = run(lambda ps, f=foreach: torch.optim.Adagrad(ps, foreach=f, **kwargs), p_theirs,
                     steps, negate=negate)
        where = f"Adagrad({kwargs_id(kwargs)}) vs torch foreach={foreach}"
        assert_same_trajectory(p_ours, p_theirs, dtype, where=where)
        assert_same_state(ours, theirs, p_ours, p_theirs, dtype, ("step", "sum"))
    frozen = ours.state[p_ours[-1]]
    assert frozen["step"] == 0, "a parameter without gradient was stepped"
    initial = kwargs.get("initial_accumulator_value", 0.0)
    assert torch.equal(frozen["sum"], torch.full_like(p_ours[-1], initial))


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_adagrad_matches_torch_over_300_steps(kwargs, dtype, device):
    compare_with_both_torch_paths(kwargs, dtype=dtype, device=device)


def test_adagrad_matches_torch_at_extreme_values(dtype, device):
    """A large ε, no ε at all, and a learning-rate decay of 1 (γ_t = γ / t)."""
    compare_with_both_torch_paths(dict(lr=0.5, eps=0.1, lr_decay=1.0), dtype=dtype, device=device)
    compare_with_both_torch_paths(dict(lr=0.05, eps=0.0), dtype=dtype, device=device, steps=50)


def test_defaults_are_torchs():
    ours = Adagrad(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.Adagrad(make_params(torch.float64, "cpu")).defaults
    assert ours == {k: theirs[k] for k in ours}
    assert set(theirs) - set(ours) == {"differentiable", "fused"}


def test_foreach_is_accepted_and_changes_nothing():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    run(lambda ps: Adagrad(ps, lr=0.05, foreach=True), a, 30)
    run(lambda ps: Adagrad(ps, lr=0.05, foreach=False), b, 30)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_adagrad_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)
    state_dict_round_trip(Adagrad, torch.optim.Adagrad, kwargs, dtype=dtype, device=device)


def test_state_exists_before_the_first_step_as_in_torch():
    ours = Adagrad(make_params(torch.float64, "cpu"), initial_accumulator_value=0.3)
    theirs = torch.optim.Adagrad(make_params(torch.float64, "cpu"), initial_accumulator_value=0.3)
    so, st = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert set(so) == set(st) == {0, 1, 2, 3}
    for i in so:
        assert set(so[i]) == set(st[i]) == {"step", "sum"}
        assert so[i]["step"] == 0 and torch.equal(so[i]["sum"], st[i]["sum"])
    Adagrad(make_params(torch.float64, "cpu")).load_state_dict(theirs.state_dict())
    torch.optim.Adagrad(make_params(torch.float64, "cpu")).load_state_dict(ours.state_dict())


def test_constant_gradient_gives_steps_shrinking_like_one_over_sqrt_t():
    """book/optimizers.md: with g = g0 every step, s = t g0², so each coordinate moves by
    γ g0 / (√t |g0| + ε) ≈ γ / √t, whatever the size of its gradient."""
    lr, steps = 0.1, 400
    g0 = torch.tensor([0.5, -2.0, 30.0], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64)
    state = adagrad_init(p)
    for t in range(1, steps + 1):
        new_p, state = adagrad_step(p, g0, state, lr=lr)
        moved = (p - new_p).abs()
        torch.testing.assert_close(moved, torch.full_like(moved, lr / math.sqrt(t)),
                                   rtol=1e-9, atol=0)
        p = new_p
    # after t steps the parameter has travelled γ(1 + 1/√2 + ... + 1/√t) ~ 2γ√t: it keeps
    # moving, but ever more slowly
    travelled = sum(lr / math.sqrt(t) for t in range(1, steps + 1))
    torch.testing.assert_close(p, -torch.sign(g0) * travelled, rtol=1e-9, atol=0)
    assert 2 * lr * (math.sqrt(steps + 1) - 1) < travelled < 2 * lr * math.sqrt(steps)


def test_lr_decay_multiplies_the_annealing():
    lr, decay = 0.1, 0.5
    p, g0 = torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, -4.0], dtype=torch.float64)
    state = adagrad_init(p)
    for t in range(1, 20):
        new_p, state = adagrad_step(p, g0, state, lr=lr, lr_decay=decay)
        expected = lr / (1 + (t - 1) * decay) / math.sqrt(t)
        torch.testing.assert_close((p - new_p).abs(), torch.full((2,), expected,
                                                                 dtype=torch.float64))
        p = new_p


def test_initial_accumulator_value_shrinks_the_first_steps():
    p, g = torch.zeros(1, dtype=torch.float64), torch.tensor([0.6], dtype=torch.float64)
    new_p, state = adagrad_step(p, g, adagrad_init(p, initial_accumulator_value=0.64), lr=1.0)
    assert state["sum"].item() == pytest.approx(1.0)      # 0.64 + 0.36
    assert new_p.item() == pytest.approx(-0.6, rel=1e-9)  # −0.6 / √1


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    hp = dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)
    state = adagrad_init(p, initial_accumulator_value=0.2)
    opt_p = p.clone().requires_grad_()
    opt = Adagrad([opt_p], initial_accumulator_value=0.2, **hp)
    for _ in range(20):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        before = (p.clone(), g.clone(), state["sum"].clone(), state["step"])
        new_p, new_state = adagrad_step(p, g, state, **hp)
        assert torch.equal(p, before[0]) and torch.equal(g, before[1]), "inputs were mutated"
        assert torch.equal(state["sum"], before[2]) and state["step"] == before[3], \
            "state was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        assert torch.equal(new_state["sum"], opt.state[opt_p]["sum"])
        assert new_state["step"] == opt.state[opt_p]["step"] == before[3] + 1
        assert new_p.device == p.device and new_p.dtype == p.dtype
        p, state = new_p, new_state


def test_pure_step_example():
    p, g = torch.tensor([1.0]), torch.tensor([0.5])
    new_p, state = adagrad_step(p, g, adagrad_init(p), lr=0.1)
    assert torch.allclose(new_p, torch.tensor([0.9]))
    assert torch.equal(state["sum"], torch.tensor([0.25])) and state["step"] == 1


@pytest.mark.parametrize("kwargs", [dict(), dict(lr_decay=0.1, weight_decay=0.1, maximize=True,
                                                 initial_accumulator_value=0.1, foreach=True)],
                         ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(Adagrad, kwargs)


def test_pure_steps_on_meta():
    p = torch.empty(4, 3, device="meta", dtype=torch.float64)
    state = adagrad_init(p, initial_accumulator_value=0.1)
    assert state["sum"].device.type == "meta" and state["sum"].dtype == torch.float64
    new_p, state = adagrad_step(p, torch.empty_like(p), state, lr_decay=0.1, weight_decay=0.1)
    assert new_p.device.type == "meta" and new_p.dtype == torch.float64
    assert state["sum"].device.type == "meta" and state["step"] == 1


def test_works_under_lr_scheduler_and_param_groups():
    """Torch starts every group's accumulator at the constructor's initial_accumulator_value,
    ignoring a per-group one; nnbolts follows so that the trajectories stay equal."""
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02, "initial_accumulator_value": 5.0},  # noqa: E731
                         {"params": ps[2:], "lr_decay": 0.05}]
    oa = Adagrad(groups(a), lr=0.05, initial_accumulator_value=0.1)
    ob = torch.optim.Adagrad(groups(b), lr=0.05, initial_accumulator_value=0.1)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(oa, 100))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(ob, 100))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_group_added_later_starts_from_the_constructor_value():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    oa = Adagrad(a[:2], lr=0.05, initial_accumulator_value=0.3)
    ob = torch.optim.Adagrad(b[:2], lr=0.05, initial_accumulator_value=0.3)
    oa.add_param_group({"params": a[2:]})
    ob.add_param_group({"params": b[2:]})
    run(oa, a, 50)
    run(ob, b, 50)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert torch.equal(oa.state[a[2]]["sum"], ob.state[b[2]]["sum"])


P = torch.zeros(3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Adagrad([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: Adagrad([P], lr_decay=-0.5), ValueError, r"Invalid lr_decay value: -0.5"),
    (lambda: Adagrad([P], weight_decay=-1e-4), ValueError, r"Invalid weight_decay value: -0.0001"),
    (lambda: Adagrad([P], initial_accumulator_value=-1.0), ValueError,
     r"Invalid initial_accumulator_value value: -1.0"),
    (lambda: Adagrad([P], eps=-1e-10), ValueError, r"Invalid epsilon value: -1e-10"),
    (lambda: Adagrad([P], lr=float("nan")), ValueError, r"Invalid learning rate: nan"),
    (lambda: Adagrad([P], lr=torch.tensor([0.1, 0.2])), ValueError,
     r"Tensor lr must be 1-element"),
    (lambda: adagrad_init(P, initial_accumulator_value=-0.1), ValueError,
     r"Invalid initial_accumulator_value value: -0.1"),
    (lambda: adagrad_step(P, P, adagrad_init(P), lr=-1.0), ValueError,
     r"Invalid learning rate: -1.0"),
    (lambda: adagrad_step(P, P, adagrad_init(P), lr_decay=-1), ValueError,
     r"Invalid lr_decay value: -1"),
    (lambda: adagrad_step(P, P, {}, lr=0.1), ValueError,
     r"state has no 'step'; create the state with adagrad_init\(param\)"),
    (lambda: adagrad_step(P, P, {"step": 0}, lr=0.1), ValueError, r"state has no 'sum'"),
    (lambda: adagrad_step(P, P, {"step": torch.tensor(0.0), "sum": P}, lr=0.1), TypeError,
     r"expected state\['step'\] to be an int >= 0, got tensor"),
    (lambda: adagrad_step(P, P, {"step": -1, "sum": P}, lr=0.1), TypeError,
     r"expected state\['step'\] to be an int >= 0, got -1"),
    (lambda: adagrad_step(P, P, {"step": 0, "sum": torch.zeros(2)}), ValueError,
     r"state\['sum'\] has shape \(2,\) but param has shape \(3,\)"),
    (lambda: adagrad_step(P, P, None), TypeError, r"expected state to be a dict, got NoneType"),
    (lambda: adagrad_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                          {"step": 0, "sum": torch.zeros(3, dtype=torch.int64)}), TypeError,
     r"expected a floating tensor for param, got torch.int64"),
    (lambda: adagrad_step(P, torch.zeros(4), adagrad_init(P)), ValueError,
     r"grad has shape \(4,\) but param has shape \(3,\)"),
    (lambda: adagrad_step(P, torch.zeros(3, device="meta"), adagrad_init(P)), ValueError,
     r"grad is on meta but param is on cpu"),
    (lambda: adagrad_step(P, P.double(), adagrad_init(P)), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: adagrad_step([0.0], P, adagrad_init(P)), TypeError,
     r"expected param to be a torch.Tensor, got list"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
