"""AdaBound / AMSBound. Torch has no AdaBound, so the checks are: closed forms of the first
steps worked out here by hand, an independent transcription of the rule over 300 steps for every
option combination, the two limits the rule is built around (bounds switched off: Adam; bounds
closed: SGD with learning rate ``final_lr``), and its behaviour on small problems."""

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from optim_oracle import (
    assert_same_trajectory,
    kwargs_id,
    make_params,
    max_rel_err,
    objective,
    option_grid,
    run,
    run_on_meta,
)

from nnbolts.optim.adabound import AdaBound, adabound_bounds, adabound_init, adabound_step
from nnbolts.optim.adam import Adam

F64 = torch.float64


# --------------------------------------------------------------------------------------------
# closed forms of the first steps
# --------------------------------------------------------------------------------------------

def test_first_step_closed_form_hits_both_bounds():
    """Step 1 from zero moments: m = (1−β₁)g, v = (1−β₂)g², and the unclipped rate is
    α√(1−β₂)/((1−β₁)(√(1−β₂)|g| + ε)), about α/((1−β₁)|g|). With γ = 0.5 the band at t = 1 is
    [η*/3, 3η*]: a middling gradient stays inside, a small one is capped, a large one lifted."""
    lr, b1, b2, final_lr, gamma, eps = 0.1, 0.9, 0.999, 0.1, 0.5, 1e-8
    g = torch.tensor([10.0, 0.1, 100.0, -10.0], dtype=F64)
    p0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    new_p, state = adabound_step(p0, g, adabound_init(p0), lr=lr, betas=(b1, b2),
                                 final_lr=final_lr, gamma=gamma, eps=eps)
    lower, upper = final_lr * (1 - 1 / 1.5), final_lr * 3      # [1/30, 0.3]
    expected = []
    for gi, pi in zip(g.tolist(), p0.tolist()):
        raw = lr * math.sqrt(1 - b2) / (1 - b1) / (math.sqrt(1 - b2) * abs(gi) + eps)
        expected.append(pi - min(max(raw, lower), upper) * (1 - b1) * gi)
    # by hand: 0.1 (inside, so Adam's step of size α), capped at 0.3, lifted to 1/30
    assert expected[0] == pytest.approx(1.0 - 0.1, rel=1e-6)
    assert expected[1] == pytest.approx(-2.0 - 0.3 * 0.1 * 0.1, rel=1e-12)
    assert expected[2] == pytest.approx(0.5 - (1 / 30) * 0.1 * 100.0, rel=1e-12)
    torch.testing.assert_close(new_p, torch.tensor(expected, dtype=F64), rtol=1e-15, atol=0)
    assert state["step"] == 1
    torch.testing.assert_close(state["exp_avg"], (1 - b1) * g, rtol=1e-15, atol=0)
    torch.testing.assert_close(state["exp_avg_sq"], (1 - b2) * g * g, rtol=1e-15, atol=0)


def test_first_step_with_weight_decay_is_adam_sign_step():
    """Without clipping and with ε = 0, step 1 of Adam and AdaBound is θ − α·sign(g + λθ)."""
    p0 = torch.tensor([1.0, -1.0, 2.0], dtype=F64)
    g = torch.tensor([0.3, 0.2, -5.0], dtype=F64)
    new_p, _ = adabound_step(p0, g, adabound_init(p0), lr=0.01, eps=0.0, weight_decay=0.5,
                             gamma=0.0)
    torch.testing.assert_close(new_p, p0 - 0.01 * torch.sign(g + 0.5 * p0), rtol=1e-15, atol=0)


def test_second_and_third_steps_closed_form():
    """Steps 2 and 3 by hand: m₂ = β₁(1−β₁)g₁ + (1−β₁)g₂, v₂ = β₂(1−β₂)g₁² + (1−β₂)g₂², and so
    on; the band at step t is [η*(1 − 1/(γt+1)), η*(1 + 1/(γt))]; AMSBound uses max(v₂, v₃)."""
    lr, b1, b2, final_lr, gamma, eps = 0.05, 0.8, 0.9, 0.2, 0.3, 1e-3
    gs = [2.0, -0.5, 0.01]
    for amsbound in (False, True):
        p = torch.tensor([1.5], dtype=F64)
        state = adabound_init(p, amsbound=amsbound)
        theta, m, v, vmax = 1.5, 0.0, 0.0, 0.0
        for t, gt in enumerate(gs, start=1):
            p, state = adabound_step(p, torch.tensor([gt], dtype=F64), state, lr=lr,
                                     betas=(b1, b2), final_lr=final_lr, gamma=gamma, eps=eps,
                                     amsbound=amsbound)
            m = b1 * m + (1 - b1) * gt
            v = b2 * v + (1 - b2) * gt * gt
            vmax = max(vmax, v)
            second = vmax if amsbound else v
            raw = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) / (math.sqrt(second) + eps)
            lower = final_lr * gamma * t / (gamma * t + 1)
            upper = final_lr * (1 + 1 / (gamma * t))
            theta -= min(max(raw, lower), upper) * m
            assert p.item() == pytest.approx(theta, rel=1e-14), (amsbound, t)
            assert state["exp_avg"].item() == pytest.approx(m, rel=1e-14)
            assert state["exp_avg_sq"].item() == pytest.approx(v, rel=1e-14)
        if amsbound:
            assert state["max_exp_avg_sq"].item() == pytest.approx(vmax, rel=1e-14)
    # the third gradient is tiny: v shrinks, so AMSBound (which keeps v₂) takes a smaller rate
    assert vmax > v


# --------------------------------------------------------------------------------------------
# an independent transcription over 300 steps, every option combination
# --------------------------------------------------------------------------------------------

def reference_trajectory(kwargs, *, dtype, device, steps=300):
    """AdaBound written out directly (bias-corrected Adam rate, then clipped), no in-place ops."""
    lr, (b1, b2) = kwargs["lr"], kwargs.get("betas", (0.9, 0.999))
    final_lr, gamma = kwargs.get("final_lr", 0.1), kwargs.get("gamma", 1e-3)
    eps, wd = kwargs.get("eps", 1e-8), kwargs.get("weight_decay", 0.0)
    amsbound = kwargs.get("amsbound", False)
    params = make_params(dtype, device)
    live = params[:-1]                                 # the last one never gets a gradient
    m = [torch.zeros_like(p) for p in live]
    v = [torch.zeros_like(p) for p in live]
    vmax = [torch.zeros_like(p) for p in live]
    for k in range(steps):
        t = k + 1
        for p in params:
            p.grad = None
        objective(params, k).backward()
        with torch.no_grad():
            for i, p in enumerate(live):
                g = p.grad + wd * p
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                vmax[i] = torch.maximum(vmax[i], v[i])
                root = (vmax[i] if amsbound else v[i]).sqrt()
                rate = (lr / (1 - b1 ** t)) * math.sqrt(1 - b2 ** t) / (root + eps)
                lower = final_lr * gamma * t / (gamma * t + 1)
                upper = final_lr * (1 + 1 / (gamma * t)) if gamma > 0 else math.inf
                p.sub_(rate.clamp(lower, upper) * m[i])
    return params


# Two regimes of the band: the defaults (wide for the whole run: Adam-like), and a fast-closing
# band around a small final_lr, which both bounds clip along the way (see the band test below).
GRID = [dict(lr=0.01, **band, **opts)
        for band in (dict(final_lr=0.1, gamma=1e-3), dict(final_lr=0.02, gamma=0.1))
        for opts in option_grid(weight_decay=[0.0, 0.05], amsbound=[False, True])]


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_matches_transcription_over_300_steps(kwargs, dtype, device):
    ours = make_params(dtype, device)
    opt = run(lambda ps: AdaBound(ps, **kwargs), ours, 300)
    theirs = reference_trajectory(kwargs, dtype=dtype, device=device)
    assert_same_trajectory(ours, theirs, dtype, where=f"AdaBound({kwargs_id(kwargs)})")
    assert opt.state.get(ours[-1], {}) == {}, "a parameter without gradient got state"
    keys = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if kwargs["amsbound"] else set())
    assert set(opt.state[ours[0]]) == keys
    assert opt.state[ours[0]]["step"] == 300 and type(opt.state[ours[0]]["step"]) is int


# --------------------------------------------------------------------------------------------
# the two limits
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", option_grid(lr=[0.01], weight_decay=[0.0, 0.05],
                                               amsgrad=[False, True]), ids=kwargs_id)
def test_without_bounds_and_eps_it_is_adam(kwargs, dtype, device):
    """gamma = 0 opens the band to [0, ∞); with ε = 0 the rate is exactly Adam's."""
    kwargs = dict(kwargs)
    ams = kwargs.pop("amsgrad")
    ours, theirs = make_params(dtype, device), make_params(dtype, device)
    run(lambda ps: AdaBound(ps, gamma=0.0, eps=0.0, amsbound=ams, **kwargs), ours, 300)
    run(lambda ps: torch.optim.Adam(ps, eps=0.0, amsgrad=ams, **kwargs), theirs, 300)
    assert_same_trajectory(ours, theirs, dtype, where="AdaBound vs torch.optim.Adam")


def test_without_bounds_and_eps_it_is_nnbolts_adam():
    ours, theirs = make_params(F64, "cpu"), make_params(F64, "cpu")
    kwargs = dict(lr=0.01, weight_decay=0.05)
    run(lambda ps: AdaBound(ps, gamma=0.0, eps=0.0, amsbound=True, **kwargs), ours, 300)
    run(lambda ps: Adam(ps, eps=0.0, amsgrad=True, **kwargs), theirs, 300)
    assert_same_trajectory(ours, theirs, F64, where="AdaBound vs nnbolts Adam")


def test_bounds_far_away_change_nothing():
    """A tiny gamma puts the band [≈ η*γt, ≈ η*/(γt)] far outside Adam's rates: the run is the
    unbounded one bit for bit; with the default ε it differs from torch's Adam only by where ε
    sits (relative gap of order ε/√v̂)."""
    a, b, c = (make_params(F64, "cpu") for _ in range(3))
    run(lambda ps: AdaBound(ps, lr=0.01, final_lr=1.0, gamma=1e-12), a, 300)
    run(lambda ps: AdaBound(ps, lr=0.01, gamma=0.0), b, 300)
    run(lambda ps: torch.optim.Adam(ps, lr=0.01), c, 300)
    for x, y, z in zip(a, b, c):
        assert torch.equal(x, y)
        assert 0 < max_rel_err(x.detach(), z.detach()) < 1e-7 or torch.equal(x, z)


@pytest.mark.parametrize("beta1", [0.0, 0.9])
def test_closed_band_is_sgd_with_final_lr(beta1, device):
    """Far into training (t = 10²⁰) both bounds equal η* in floating point: every coordinate
    moves by η*·m, which is torch's SGD with lr η* (with momentum = dampening = β₁, the moving
    average m as its buffer). The Adam learning rate only scales η* through the schedule."""
    params, ref = make_params(F64, device), make_params(F64, device)
    gen = torch.Generator().manual_seed(7)
    opt = AdaBound(params, lr=0.003, betas=(beta1, 0.999), final_lr=0.05)
    sgd = torch.optim.SGD(ref, lr=0.05, momentum=beta1, dampening=beta1)
    for p, q in zip(params[:-1], ref[:-1]):
        buf = torch.randn(p.shape, generator=gen, dtype=F64).to(device)
        sq = torch.rand(p.shape, generator=gen, dtype=F64).to(device)
        opt.state[p] = {"step": 10**20, "exp_avg": buf.clone(), "exp_avg_sq": sq}
        if beta1:
            sgd.state[q] = {"momentum_buffer": buf.clone()}
    assert adabound_bounds(10**20 + 1, final_lr=0.05, gamma=1e-3) == (0.05, 0.05)
    run(opt, params, 50)
    run(sgd, ref, 50)
    for x, y in zip(params, ref):
        assert max_rel_err(x.detach(), y.detach()) <= 1e-13


def test_band_closes_and_rates_stay_inside(dtype):
    """Behaviour over a run with a fast-closing band (γ = 0.1): at every step each coordinate's
    rate η = Δθ/m lies in [η_l(t), η_u(t)], both bounds are hit along the way, and after 300
    steps every rate is within 4 % of final_lr."""
    final_lr, gamma = 0.02, 0.1
    params = make_params(dtype, "cpu")
    opt = AdaBound(params, lr=0.01, final_lr=final_lr, gamma=gamma)
    tol = 1e-9 if dtype == F64 else 2e-3
    at_lower = at_upper = 0
    for k in range(300):
        opt.zero_grad()
        objective(params, k).backward()
        before = [p.detach().clone() for p in params[:-1]]
        opt.step()
        lower, upper = adabound_bounds(k + 1, final_lr=final_lr, gamma=gamma)
        for p, b in zip(params[:-1], before):
            m = opt.state[p]["exp_avg"]
            keep = m.abs() > 1e-3                          # avoid dividing by a vanishing m
            rate = ((b - p.detach()) / m)[keep]
            assert bool((rate >= lower * (1 - tol)).all() and (rate <= upper * (1 + tol)).all())
            at_lower += int((rate <= lower * (1 + tol)).sum())
            at_upper += int((rate >= upper * (1 - tol)).sum())
    assert at_lower > 0 and at_upper > 0
    assert upper / final_lr - 1 < 0.04 and 1 - lower / final_lr < 0.04


@given(step=st.integers(1, 10**12), gamma=st.floats(1e-9, 0.999),
       final_lr=st.floats(0.0, 10.0))
def test_bounds_bracket_final_lr_and_close_monotonically(step, gamma, final_lr):
    lower, upper = adabound_bounds(step, final_lr=final_lr, gamma=gamma)
    next_lower, next_upper = adabound_bounds(step + 1, final_lr=final_lr, gamma=gamma)
    assert 0 <= lower <= final_lr <= upper
    assert lower <= next_lower and next_upper <= upper


def test_bounds_with_gamma_zero_are_open():
    assert adabound_bounds(5, final_lr=0.1, gamma=0.0) == (0.0, math.inf)
    assert adabound_bounds(1000, final_lr=0.1, gamma=1e-3) == (0.05, 0.2)


# --------------------------------------------------------------------------------------------
# schedules, state dicts, purity, devices
# --------------------------------------------------------------------------------------------

def test_final_lr_follows_the_schedule():
    """Under a scheduler each step uses final_lr·lr/base_lr (the reference implementation's
    rule): the class equals the pure step fed with both rates scaled by hand."""
    params = make_params(F64, "cpu")
    opt = AdaBound(params, lr=0.02, final_lr=0.05, gamma=0.05, amsbound=True)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=40, gamma=0.3)
    lrs = []
    for k in range(150):
        lrs.append(opt.param_groups[0]["lr"])
        run(opt, params, 1, start=k, scheduler=sched)
    assert lrs[0] == 0.02 and lrs[-1] == pytest.approx(0.02 * 0.3 ** 3)
    manual = make_params(F64, "cpu")
    states = [adabound_init(p, amsbound=True) for p in manual[:-1]]
    for k, lr in enumerate(lrs):
        for p in manual:
            p.grad = None
        objective(manual, k).backward()
        for i, p in enumerate(manual[:-1]):
            new_p, states[i] = adabound_step(p.detach(), p.grad, states[i], lr=lr,
                                             final_lr=0.05 * lr / 0.02, gamma=0.05,
                                             amsbound=True)
            p.data.copy_(new_p)
    for x, y in zip(params, manual):
        assert torch.equal(x, y)
    assert opt.param_groups[0]["base_lr"] == 0.02


def test_zero_base_lr_uses_final_lr_unscaled():
    p = torch.nn.Parameter(torch.ones(2, dtype=F64))
    opt = AdaBound([p], lr=0.0, final_lr=0.05, gamma=0.5)
    opt.param_groups[0]["lr"] = 0.01
    q, _ = adabound_step(torch.ones(2, dtype=F64), torch.ones(2, dtype=F64),
                         adabound_init(torch.ones(2, dtype=F64)), lr=0.01, final_lr=0.05,
                         gamma=0.5)
    p.grad = torch.ones(2, dtype=F64)
    opt.step()
    assert torch.equal(p.detach(), q)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.02, amsbound=True, weight_decay=0.1,
                                                        gamma=0.05)], ids=kwargs_id)
def test_state_dict_round_trip_under_scheduler(kwargs, dtype, device):
    """Save mid-run (after the scheduler has changed lr), load into a fresh optimizer built with
    another lr, continue: identical to the uninterrupted run, because base_lr travels with the
    state dict."""
    def make(ps, lr):
        opt = AdaBound(ps, **{**kwargs, "lr": lr})
        return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)

    reference = make_params(dtype, device)
    opt, sched = make(reference, kwargs["lr"])
    run(opt, reference, 300, scheduler=sched)

    params = make_params(dtype, device)
    opt, sched = make(params, kwargs["lr"])
    run(opt, params, 150, scheduler=sched)
    saved = copy.deepcopy((opt.state_dict(), sched.state_dict()))
    fresh, fresh_sched = make(params, 0.5)
    fresh.load_state_dict(saved[0])
    fresh_sched.load_state_dict(saved[1])
    assert fresh.param_groups[0]["base_lr"] == kwargs["lr"]
    run(fresh, params, 150, start=150, scheduler=fresh_sched)
    assert_same_trajectory(params, reference, dtype, where="AdaBound state_dict round trip")
    assert all(type(s["step"]) is int for s in fresh.state.values())


def test_loads_state_dict_without_base_lr():
    """The reference package keeps no base_lr in its groups: such a group takes its lr."""
    params = make_params(F64, "cpu")
    opt = run(lambda ps: AdaBound(ps, lr=0.01), params, 10)
    saved = copy.deepcopy(opt.state_dict())
    for group in saved["param_groups"]:
        group["lr"] = 0.004
        del group["base_lr"]
    fresh = AdaBound(params, lr=0.01)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["base_lr"] == 0.004
    run(fresh, params, 2, start=10)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    kw = dict(lr=0.03, betas=(0.8, 0.99), final_lr=0.02, gamma=0.05, weight_decay=0.01,
              amsbound=True)
    state = adabound_init(p, amsbound=True)
    opt_p = p.clone().requires_grad_()
    opt = AdaBound([opt_p], **kw)
    for _ in range(20):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        before = (p.clone(), g.clone(), {k: v.clone() if torch.is_tensor(v) else v
                                         for k, v in state.items()})
        new_p, new_state = adabound_step(p, g, state, **kw)
        assert torch.equal(p, before[0]) and torch.equal(g, before[1]), "inputs were mutated"
        for key, value in before[2].items():
            same = torch.equal(state[key], value) if torch.is_tensor(value) else state[key] == value
            assert same, f"state[{key!r}] was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        assert new_p.device == p.device and new_p.dtype == p.dtype
        p, state = new_p, new_state
    assert state["step"] == 20


@pytest.mark.parametrize("kwargs", [dict(), dict(amsbound=True, weight_decay=0.1, gamma=0.0)],
                         ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(AdaBound, kwargs)


def test_pure_functions_on_meta():
    p = torch.empty(4, 3, device="meta")
    state = adabound_init(p, amsbound=True)
    new_p, state = adabound_step(p, torch.empty_like(p), state, amsbound=True)
    assert new_p.device.type == "meta"
    assert all(v.device.type == "meta" for v in state.values() if torch.is_tensor(v))
    assert state["step"] == 1


def test_converges_on_ill_conditioned_quadratic():
    """On ½(x₁² + 50x₂²) AdaBound starts with Adam-sized steps (~lr, both coordinates alike),
    then settles to SGD with lr η* = 0.01, which is stable there (η*·50 < 2) and converges
    linearly to the minimum, where Adam with its constant lr would keep hopping about."""
    curv = torch.tensor([1.0, 50.0], dtype=F64)
    x = torch.nn.Parameter(torch.tensor([3.0, -2.0], dtype=F64))
    opt = AdaBound([x], lr=0.1, final_lr=0.01, gamma=0.01)
    first = None
    for k in range(3000):
        opt.zero_grad()
        (0.5 * curv * x * x).sum().backward()
        opt.step()
        if k == 0:
            first = x.detach().clone()
    torch.testing.assert_close(first, torch.tensor([2.9, -1.9], dtype=F64), rtol=1e-6, atol=0)
    assert float(x.detach().abs().max()) < 1e-8


P = torch.zeros(3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: AdaBound([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: AdaBound([P], eps=-1e-8), ValueError, r"Invalid epsilon value: -1e-08"),
    (lambda: AdaBound([P], betas=(1.0, 0.999)), ValueError,
     r"Invalid beta parameter at index 0: 1.0"),
    (lambda: AdaBound([P], betas=(0.9, -0.1)), ValueError,
     r"Invalid beta parameter at index 1: -0.1"),
    (lambda: AdaBound([P], final_lr=-0.1), ValueError, r"Invalid final learning rate: -0.1"),
    (lambda: AdaBound([P], gamma=1.0), ValueError, r"Invalid gamma parameter: 1.0"),
    (lambda: AdaBound([P], gamma=-1e-3), ValueError, r"Invalid gamma parameter: -0.001"),
    (lambda: AdaBound([P], weight_decay=-1), ValueError, r"Invalid weight_decay value: -1"),
    (lambda: AdaBound([P], lr="fast"), TypeError, r"Invalid learning rate: expected a number"),
    (lambda: AdaBound([P], final_lr=None), TypeError,
     r"Invalid final learning rate: expected a number, got NoneType"),
    (lambda: adabound_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                           adabound_init(torch.zeros(3))), TypeError,
     r"expected a floating tensor for param, got torch.int64"),
    (lambda: adabound_step(P, torch.zeros(4), adabound_init(P)), ValueError,
     r"grad has shape \(4,\) but param has shape \(3,\)"),
    (lambda: adabound_step(P, torch.zeros(3, device="meta"), adabound_init(P)), ValueError,
     r"grad is on meta but param is on cpu"),
    (lambda: adabound_step(P, P, {"step": 0, "exp_avg": P}), ValueError,
     r"state has no 'exp_avg_sq'; create the state with adabound_init\(param\)"),
    (lambda: adabound_step(P, P, adabound_init(P), amsbound=True), ValueError,
     r"state has no 'max_exp_avg_sq'; create the state with adabound_init\(param, amsbound=True"),
    (lambda: adabound_step(P, P, {**adabound_init(P), "step": 1.0}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 1.0"),
    (lambda: adabound_step(P, P, {**adabound_init(P), "exp_avg": torch.zeros(2)}), ValueError,
     r"state\['exp_avg'\] has shape \(2,\) but param has shape \(3,\)"),
    (lambda: adabound_step(P, P, None), TypeError, r"expected state to be a dict"),
    (lambda: adabound_step(P, P, adabound_init(P), gamma=2.0), ValueError,
     r"Invalid gamma parameter: 2.0"),
    (lambda: adabound_bounds(0, final_lr=0.1, gamma=1e-3), ValueError,
     r"Invalid step: 0 \(must be >= 1\)"),
    (lambda: adabound_bounds(1.5, final_lr=0.1, gamma=1e-3), TypeError,
     r"expected step to be an int, got float"),
    (lambda: adabound_bounds(1, final_lr=-1.0, gamma=1e-3), ValueError,
     r"Invalid final learning rate: -1.0"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_sparse_gradients_are_refused():
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="AdaBound does not support sparse gradients"):
        AdaBound([p]).step()
