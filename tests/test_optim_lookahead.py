"""Lookahead around nnbolts' and torch's optimizers. Torch has no Lookahead: the checks are a
hand computation of fast and slow weights, the limits α = 1 (the inner optimizer) and α = 0,
state-dict round trips, schedulers, closures, devices and bad input."""

import copy

import pytest
import torch
from optim_oracle import make_params, run

from nnbolts.optim.adam import Adam
from nnbolts.optim.lookahead import Lookahead, lookahead_init, lookahead_step
from nnbolts.optim.sgd import SGD

F64 = torch.float64


def quadratic_grad(x, c):
    """Gradient of ½ c (x − 1)², written out for the hand computation."""
    return c * (x - 1.0)


@pytest.mark.parametrize("k,alpha", [(3, 0.5), (5, 0.8), (1, 0.3)])
def test_matches_hand_computed_fast_and_slow_weights_with_inner_sgd(k, alpha):
    """3k steps (plus two into the next period) of SGD on ½c(x − 1)², done by hand in Python
    floats: fast weights step every time; every k-th step φ ← φ + α(θ − φ) and θ ← φ."""
    lr, curv, x0 = 0.1, [1.0, 4.0, 9.0], [3.0, -2.0, 0.5]
    x = torch.nn.Parameter(torch.tensor(x0, dtype=F64))
    c = torch.tensor(curv, dtype=F64)
    opt = Lookahead(SGD([x], lr=lr), k=k, alpha=alpha)
    fast, slow = list(x0), list(x0)
    for t in range(1, 3 * k + 3):
        opt.zero_grad()
        (0.5 * c * (x - 1.0) ** 2).sum().backward()
        opt.step()
        fast = [f - lr * quadratic_grad(f, ci) for f, ci in zip(fast, curv)]
        if t % k == 0:
            slow = [s + alpha * (f - s) for s, f in zip(slow, fast)]
            fast = list(slow)
        torch.testing.assert_close(x.detach(), torch.tensor(fast, dtype=F64), rtol=1e-14, atol=0)
        state = opt.state[x]
        torch.testing.assert_close(state["slow_param"], torch.tensor(slow, dtype=F64),
                                   rtol=1e-14, atol=0)
        assert state["lookahead_step"] == t


@pytest.mark.parametrize("inner", [
    lambda ps: SGD(ps, lr=0.01, momentum=0.9, nesterov=True),
    lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
], ids=["nnbolts-SGD", "torch-SGD", "nnbolts-Adam", "torch-Adam"])
def test_alpha_one_is_the_inner_optimizer(inner, dtype, device):
    """With α = 1 the slow weights jump to the fast ones: nothing changes, bit for bit."""
    a, b = make_params(dtype, device), make_params(dtype, device)
    opt = run(lambda ps: Lookahead(inner(ps), k=3, alpha=1.0), a, 300)
    run(inner, b, 300)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert opt.state.get(a[-1], {}) == {}, "a parameter without gradient got state"
    assert a[-1].grad is None


def test_params_without_grad_are_skipped():
    params = make_params(F64, "cpu")
    opt = Lookahead(SGD(params, lr=0.1), k=1)
    assert not opt.state[params[-1]]     # a defaultdict look-up leaves an empty entry behind
    frozen = params[-1].detach().clone()
    run(opt, params, 3)
    assert torch.equal(params[-1], frozen) and not opt.state[params[-1]]
    assert sorted(opt.state_dict()["lookahead"]["state"]) == [0, 1, 2]


def test_alpha_zero_returns_to_the_start_every_k_steps():
    a = make_params(F64, "cpu")
    start = [p.detach().clone() for p in a]
    opt = Lookahead(torch.optim.SGD(a, lr=0.05), k=4, alpha=0.0)
    for k in range(12):
        run(opt, a, 1, start=k)
        moved = any(not torch.equal(p, s) for p, s in zip(a, start))
        assert moved == ((k + 1) % 4 != 0)


def test_slows_down_against_the_inner_optimizer_on_a_noisy_problem():
    """The behaviour Lookahead is for: with a large learning rate the fast weights bounce around
    the minimum of a noisy quadratic; averaging them through the slow weights lands closer."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(200, generator=gen, dtype=F64)
    noise = torch.randn(600, 200, generator=gen, dtype=F64)

    def final_error(make):
        x = torch.nn.Parameter(torch.zeros(200, dtype=F64))
        opt = make([x])
        for step in range(600):
            opt.zero_grad()
            x.grad = (x.detach() - target) + 2.0 * noise[step]
            opt.step()
        return float((x.detach() - target).norm())

    plain = final_error(lambda ps: torch.optim.SGD(ps, lr=0.9))
    wrapped = final_error(lambda ps: Lookahead(torch.optim.SGD(ps, lr=0.9), k=5, alpha=0.5))
    assert wrapped < 0.8 * plain


def test_pure_pair_matches_class_and_does_not_mutate(dtype, device):
    """The class is the inner step followed by lookahead_step, parameter by parameter."""
    params, manual = make_params(dtype, device), make_params(dtype, device)
    opt = Lookahead(SGD(params, lr=0.02, momentum=0.5), k=4, alpha=0.3)
    inner = SGD(manual, lr=0.02, momentum=0.5)
    states = [lookahead_init(p) for p in manual[:-1]]
    for k in range(13):
        run(opt, params, 1, start=k)
        run(inner, manual, 1, start=k)
        for i, p in enumerate(manual[:-1]):
            before = (p.detach().clone(), states[i]["slow_param"].clone(),
                      states[i]["lookahead_step"])
            new_p, new_state = lookahead_step(p.detach(), states[i], k=4, alpha=0.3)
            assert torch.equal(p, before[0]), "param was mutated"
            assert torch.equal(states[i]["slow_param"], before[1]), "state was mutated"
            assert states[i]["lookahead_step"] == before[2], "state was mutated"
            assert new_p.device == p.device and new_p.dtype == p.dtype
            with torch.no_grad():
                p.copy_(new_p)
            states[i] = new_state
    for x, y in zip(params, manual):
        assert torch.equal(x, y)
    for p, s in zip(params[:-1], states):
        assert torch.equal(opt.state[p]["slow_param"], s["slow_param"])
        assert opt.state[p]["lookahead_step"] == s["lookahead_step"] == 13


@pytest.mark.parametrize("inner", [
    lambda ps: Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
], ids=["nnbolts-Adam", "torch-Adam", "torch-SGD"])
def test_state_dict_round_trip_continues_identically(inner, dtype, device):
    """Save mid-period (step 7 of k = 5), load into a fresh Lookahead on a fresh inner optimizer,
    continue: identical to the uninterrupted run."""
    make = lambda ps: Lookahead(inner(ps), k=5, alpha=0.6)
    reference = make_params(dtype, device)
    run(make, reference, 20)
    params = make_params(dtype, device)
    opt = run(make, params, 7)
    saved = copy.deepcopy(opt.state_dict())
    assert set(saved) == {"state", "param_groups", "lookahead"}
    assert saved["lookahead"]["k"] == 5 and saved["lookahead"]["alpha"] == 0.6
    assert sorted(saved["lookahead"]["state"]) == [0, 1, 2]  # the frozen param 3 has none
    assert saved["lookahead"]["state"][0]["lookahead_step"] == 7
    fresh = Lookahead(inner(params), k=2, alpha=0.1)   # k and alpha come from the state dict
    fresh.load_state_dict(saved)
    assert (fresh.k, fresh.alpha) == (5, 0.6)
    run(fresh, params, 13, start=7)
    for x, y in zip(params, reference):
        assert torch.equal(x, y)


def test_state_dict_moves_to_and_from_the_bare_inner_optimizer():
    params = make_params(F64, "cpu")
    opt = run(lambda ps: Lookahead(torch.optim.Adam(ps, lr=0.01), k=3), params, 4)
    bare = torch.optim.Adam(params, lr=0.01)
    bare.load_state_dict(copy.deepcopy(opt.state_dict()))           # the extra entry is ignored
    assert torch.equal(bare.state[params[0]]["exp_avg"], opt.optimizer.state[params[0]]["exp_avg"])
    again = Lookahead(torch.optim.Adam(params, lr=0.01), k=3)
    again.load_state_dict(bare.state_dict())                         # slow weights restart
    assert len(again.state) == 0
    run(again, params, 1, start=4)
    assert again.state[params[0]]["lookahead_step"] == 1


def test_shares_param_groups_and_works_under_lr_scheduler():
    """Schedulers see the inner optimizer's groups (the same list, even after the inner one
    reloads its state); the run equals the inner optimizer scheduled by hand plus the pure
    slow-weight update."""
    params, manual = make_params(F64, "cpu"), make_params(F64, "cpu")
    inner = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    opt = Lookahead(inner, k=4, alpha=0.5)
    assert opt.param_groups is inner.param_groups and opt.defaults is inner.defaults
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)
    inner_manual = torch.optim.SGD(manual, lr=0.05, momentum=0.9)
    sched_manual = torch.optim.lr_scheduler.CosineAnnealingLR(inner_manual, T_max=40)
    states = [lookahead_init(p) for p in manual[:-1]]
    for k in range(40):
        run(opt, params, 1, start=k, scheduler=sched)
        run(inner_manual, manual, 1, start=k)
        for i, p in enumerate(manual[:-1]):
            new_p, states[i] = lookahead_step(p.detach(), states[i], k=4, alpha=0.5)
            with torch.no_grad():
                p.copy_(new_p)
        sched_manual.step()
        assert inner.param_groups[0]["lr"] == inner_manual.param_groups[0]["lr"]
    for x, y in zip(params, manual):
        assert torch.equal(x, y)
    inner.load_state_dict(inner.state_dict())          # replaces inner.param_groups
    assert opt.param_groups is inner.param_groups


def test_closure_zero_grad_and_add_param_group():
    x = torch.nn.Parameter(torch.tensor([2.0, -1.0], dtype=F64))
    opt = Lookahead(torch.optim.SGD([x], lr=0.1), k=2)

    def closure():
        opt.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(4)]
    assert losses[0] == 5.0 and losses[-1] < losses[0]
    assert opt.state[x]["lookahead_step"] == 4
    opt.zero_grad()
    assert x.grad is None
    y = torch.nn.Parameter(torch.ones(2, dtype=F64))
    opt.add_param_group({"params": [y], "lr": 0.5})
    assert len(opt.optimizer.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.5
    (y ** 2).sum().backward()
    opt.step()
    assert opt.state[y]["lookahead_step"] == 1


def test_lbfgs_inner_optimizer_with_closure():
    """An inner optimizer that calls the closure many times per step is still one step."""
    x = torch.nn.Parameter(torch.tensor([1.5, -0.5], dtype=F64))
    opt = Lookahead(torch.optim.LBFGS([x], lr=0.5, max_iter=5), k=2, alpha=0.5)

    def closure():
        opt.zero_grad()
        loss = ((x - 0.25) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(6):
        opt.step(closure)
    assert opt.state[x]["lookahead_step"] == 6
    # L-BFGS solves the quadratic within each step, so every sync halves the slow weights'
    # distance to the minimum 0.25: three syncs leave 1/8 of it (up to L-BFGS's own accuracy,
    # blurred because its curvature pairs do not know about the jumps)
    expected = 0.25 + (torch.tensor([1.5, -0.5], dtype=F64) - 0.25) / 8
    torch.testing.assert_close(x.detach(), expected, rtol=0, atol=2e-3)


def test_hooks_repr_and_deepcopy():
    params = make_params(F64, "cpu")
    opt = Lookahead(SGD(params, lr=0.01), k=3)
    calls = []
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("step"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("state_dict"))
    run(opt, params, 2)
    opt.state_dict()
    assert calls == ["step", "step", "state_dict"]
    assert repr(opt).startswith("Lookahead(k=3, alpha=0.5, optimizer=SGD (")
    twin = copy.deepcopy(opt)
    assert twin.k == 3 and twin.optimizer is not opt.optimizer
    assert "differentiable" not in opt.optimizer.defaults     # Lookahead added nothing to them


@pytest.mark.parametrize("inner", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                   lambda ps: Adam(ps, lr=0.1, foreach=True)],
                         ids=["SGD", "Adam-foreach"])
def test_meta_device(inner):
    params = [torch.empty(s, device="meta", requires_grad=True) for s in [(4, 3), (5,)]]
    opt = Lookahead(inner(params), k=2)
    for _ in range(3):
        for p in params:
            p.grad = torch.empty_like(p)
        opt.step()
    for p in params:
        assert p.device.type == "meta"
        assert opt.state[p]["slow_param"].device.type == "meta"
        assert opt.state[p]["lookahead_step"] == 3


def test_pure_functions_on_meta():
    p = torch.empty(4, 3, device="meta", dtype=F64)
    state = lookahead_init(p)
    new_p, state = lookahead_step(p, state, k=1, alpha=0.5)
    assert new_p.device.type == "meta" and state["slow_param"].device.type == "meta"
    assert new_p.dtype == F64 and state["lookahead_step"] == 1


def test_pure_example_and_init():
    p = torch.tensor([0.0])
    state = lookahead_init(p)
    assert state["slow_param"] is not p and state["lookahead_step"] == 0
    new_p, state = lookahead_step(torch.tensor([1.0]), state, k=1, alpha=0.5)
    assert torch.equal(new_p, torch.tensor([0.5])) and torch.equal(state["slow_param"], new_p)


P = torch.zeros(3)
INNER = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Lookahead(INNER, k=0), ValueError, r"Invalid k: 0 \(must be >= 1\)"),
    (lambda: Lookahead(INNER, k=-3), ValueError, r"Invalid k: -3"),
    (lambda: Lookahead(INNER, k=2.0), TypeError, r"expected k to be an int, got float: 2.0"),
    (lambda: Lookahead(INNER, k=True), TypeError, r"expected k to be an int, got bool"),
    (lambda: Lookahead(INNER, alpha=1.5), ValueError, r"Invalid alpha: 1.5"),
    (lambda: Lookahead(INNER, alpha=-0.1), ValueError, r"Invalid alpha: -0.1"),
    (lambda: Lookahead(INNER, alpha=float("nan")), ValueError, r"Invalid alpha: nan"),
    (lambda: Lookahead(INNER, alpha="half"), TypeError, r"Invalid alpha: expected a number"),
    (lambda: Lookahead([P]), TypeError,
     r"expected optimizer to be a torch.optim.Optimizer, got list"),
    (lambda: Lookahead(torch.optim.SGD), TypeError,
     r"expected optimizer to be a torch.optim.Optimizer, got type"),
    (lambda: lookahead_init(torch.zeros(3, dtype=torch.int64)), TypeError,
     r"expected a floating tensor for param, got torch.int64"),
    (lambda: lookahead_init([0.0]), TypeError, r"expected param to be a torch.Tensor, got list"),
    (lambda: lookahead_step(P, lookahead_init(P), k=0), ValueError, r"Invalid k: 0"),
    (lambda: lookahead_step(P, lookahead_init(P), alpha=2.0), ValueError, r"Invalid alpha: 2.0"),
    (lambda: lookahead_step(P, None), TypeError, r"expected state to be a dict, got NoneType"),
    (lambda: lookahead_step(P, {"slow_param": P}), ValueError,
     r"state has no 'lookahead_step'; create the state with lookahead_init\(param\)"),
    (lambda: lookahead_step(P, {"slow_param": torch.zeros(2), "lookahead_step": 0}), ValueError,
     r"state\['slow_param'\] has shape \(2,\) but param has shape \(3,\)"),
    (lambda: lookahead_step(P, {"slow_param": P.double(), "lookahead_step": 0}), TypeError,
     r"state\['slow_param'\] has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: lookahead_step(P, {"slow_param": P, "lookahead_step": -1}), ValueError,
     r"Invalid state\['lookahead_step'\]: -1"),
    (lambda: lookahead_step(P, {"slow_param": P, "lookahead_step": 1.0}), TypeError,
     r"expected state\['lookahead_step'\] to be an int"),
    (lambda: lookahead_step(torch.zeros(3, dtype=torch.int64), lookahead_init(P)), TypeError,
     r"expected a floating tensor for param, got torch.int64"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_state_dict_is_refused():
    params = make_params(F64, "cpu")
    opt = run(lambda ps: Lookahead(torch.optim.SGD(ps, lr=0.1)), params, 1)
    saved = opt.state_dict()
    saved["lookahead"] = {**saved["lookahead"], "k": 0}
    with pytest.raises(ValueError, match=r"Invalid k: 0"):
        Lookahead(torch.optim.SGD(params, lr=0.1)).load_state_dict(saved)

