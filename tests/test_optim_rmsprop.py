"""RMSprop against torch.optim.RMSprop, and the Deep Learning book's variants (ε inside the
root, algorithm 8.5; Nesterov momentum, algorithm 8.6) against the algorithms as printed."""

import pytest
import torch
from optim_oracle import (
    assert_same_trajectory,
    kwargs_id,
    make_params,
    option_grid,
    run,
    run_on_meta,
    state_dict_round_trip,
)
from optim_oracle import (
    compare_with_both_torch_paths as oracle_compare_both,
)

from nnbolts.optim.rmsprop import RMSprop, rmsprop_init, rmsprop_step

STATE_KEYS = ("step", "square_avg", "momentum_buffer", "grad_avg")

# ``foreach`` is not in the grid: every case is compared with both of torch's paths at once
GRID = option_grid(lr=[0.01], alpha=[0.9], weight_decay=[0.0, 0.05], momentum=[0.0, 0.9],
                   centered=[False, True], maximize=[False, True])


def compare_with_both_torch_paths(kwargs, *, dtype, device, steps=300):
    """Both of torch's paths at once (see optim_oracle). nnbolts' own options are passed
    switched off, to show they change nothing then."""
    def ours(ps, **kw):
        return RMSprop(ps, eps_inside_sqrt=False, nesterov=False, **kw)

    oracle_compare_both(ours, torch.optim.RMSprop, kwargs, dtype=dtype, device=device,
                        steps=steps, state_keys=STATE_KEYS)


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_rmsprop_matches_torch_over_300_steps(kwargs, dtype, device):
    compare_with_both_torch_paths(kwargs, dtype=dtype, device=device)


def test_rmsprop_matches_torch_at_other_values(dtype, device):
    """Torch's default α and ε are in :func:`test_defaults_are_torchs`; here a small α, a large
    ε and a weaker momentum."""
    compare_with_both_torch_paths(dict(lr=0.05, alpha=0.5, eps=0.1, momentum=0.5, centered=True),
                                  dtype=dtype, device=device, steps=100)


def test_defaults_are_torchs():
    ours = RMSprop(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.RMSprop(make_params(torch.float64, "cpu")).defaults
    assert {k: ours[k] for k in ours if k in theirs} == {k: theirs[k] for k in ours if k in theirs}
    assert set(theirs) - set(ours) == {"capturable", "differentiable"}
    assert not ours["eps_inside_sqrt"] and not ours["nesterov"]


def test_rmsprop_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)
    state_dict_round_trip(RMSprop, torch.optim.RMSprop, kwargs, dtype=dtype, device=device)


def test_foreach_is_accepted_and_changes_nothing():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    run(lambda ps: RMSprop(ps, momentum=0.9, foreach=True), a, 30)
    run(lambda ps: RMSprop(ps, momentum=0.9, foreach=False), b, 30)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


# --------------------------------------------------------------------------------------------
# the book's variants, against the algorithms exactly as printed
# --------------------------------------------------------------------------------------------

STEPS = 300


def noisy_problem(dtype, device):
    """A starting point and ``grad_at(x, k)``: the gradient at ``x`` at step ``k`` of an
    ill-conditioned quartic with fixed per-step noise. Closed form, no autograd: the variants
    are checked on every combination of options, so each run has to be cheap."""
    gen = torch.Generator().manual_seed(7)
    x0 = torch.randn(2, 8, generator=gen, dtype=dtype).to(device)
    curvature = torch.linspace(0.5, 8.0, 16, dtype=dtype).reshape(2, 8).to(device)
    target = torch.linspace(-1.0, 1.0, 16, dtype=dtype).reshape(2, 8).to(device)
    noise = 0.1 * torch.randn(STEPS, 2, 8, generator=gen, dtype=dtype).to(device)

    def grad_at(x, k):
        return curvature * (x - target) + 0.2 * x ** 3 + noise[k]

    return x0, grad_at


def book_rmsprop(x0, grad_at, steps, *, lr, alpha, eps, weight_decay, momentum, centered,
                 maximize, eps_inside_sqrt, nesterov):
    """RMSProp as the Deep Learning book prints it (algorithms 8.5 and 8.6), with the velocity
    ``v`` of its momentum form and, for Nesterov, the gradient taken at the interim point
    θ + αv, generalised to torch's options. Returns the points where gradients were taken, and
    the final ``r``, ``m`` and ``v``."""
    theta = x0.clone()
    r, m, v = torch.zeros_like(x0), torch.zeros_like(x0), torch.zeros_like(x0)
    points = []
    for k in range(steps):
        at = theta + momentum * v if nesterov else theta
        points.append(at)
        g = grad_at(at, k)
        g = -g if maximize else g
        g = g + weight_decay * at
        r = alpha * r + (1 - alpha) * g * g
        m = alpha * m + (1 - alpha) * g
        var = r - m * m if centered else r
        d = torch.sqrt(var + eps) if eps_inside_sqrt else torch.sqrt(var) + eps
        if momentum > 0:
            v = momentum * v - lr * g / d
            theta = theta + v
        else:
            theta = theta - lr * g / d
    return torch.stack(points), r, m, v


def nnbolts_rmsprop(x0, grad_at, steps, **kwargs):
    """The same run with the nnbolts class: the gradient is always taken at the stored
    parameter (with Nesterov, that is the look-ahead point)."""
    p = x0.clone().requires_grad_()
    opt = RMSprop([p], **kwargs)
    points = []
    for k in range(steps):
        points.append(p.detach().clone())
        p.grad = grad_at(p.detach(), k)
        opt.step()
    return torch.stack(points), opt.state[p]


BOOK_GRID = [
    kw for kw in option_grid(
        eps_inside_sqrt=[False, True], nesterov=[False, True], momentum=[0.0, 0.9],
        centered=[False, True], weight_decay=[0.0, 0.05], maximize=[False, True])
    if not (kw["nesterov"] and kw["momentum"] == 0)
]


@pytest.mark.parametrize("kwargs", BOOK_GRID, ids=kwargs_id)
def test_variants_follow_the_book_over_300_steps(kwargs, device):
    """float64 only: this checks algebra (two forms of one rule), where float64 is the sharp
    instrument; float32 and the variants are covered by the pure-step, class and meta tests."""
    dtype = torch.float64
    x0, grad_at = noisy_problem(dtype, device)
    if kwargs["maximize"]:
        ascent = grad_at
        grad_at = lambda x, k: -ascent(x, k)  # noqa: E731  (maximise −f: same path as before)
    hp = dict(lr=0.01, alpha=0.9, eps=1e-6, **kwargs)
    points, r, m, v = book_rmsprop(x0, grad_at, STEPS, **hp)
    ours, state = nnbolts_rmsprop(x0, grad_at, STEPS, **hp)
    where = f"RMSprop({kwargs_id(kwargs)}) vs the book"
    assert_same_trajectory([ours], [points], dtype, where=where)
    assert_same_trajectory([state["square_avg"]], [r], dtype, where=where + " square_avg")
    if kwargs["centered"]:
        assert_same_trajectory([state["grad_avg"]], [m], dtype, where=where + " grad_avg")
    if kwargs["momentum"] > 0:
        # torch's buffer is the velocity in units of the learning rate, b = −v/γ; compared in
        # the book's units (−γb against v), since dividing by γ = 0.01 would magnify float32
        # rounding a hundredfold
        assert_same_trajectory([-hp["lr"] * state["momentum_buffer"]], [v], dtype,
                               where=where + " momentum_buffer")
    assert state["step"] == STEPS


def test_book_reference_is_torch_when_the_variants_are_off():
    """The reference above is trustworthy: with both variants off it is torch's RMSprop."""
    x0, grad_at = noisy_problem(torch.float64, "cpu")
    hp = dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.9, centered=True)
    points, *_ = book_rmsprop(x0, grad_at, STEPS, maximize=False, eps_inside_sqrt=False,
                              nesterov=False, **hp)
    p = x0.clone().requires_grad_()
    opt = torch.optim.RMSprop([p], **hp)
    for k in range(STEPS):
        assert_same_trajectory([p.detach()], [points[k]], torch.float64, where=f"step {k}")
        p.grad = grad_at(p.detach(), k)
        opt.step()


def test_eps_inside_sqrt_by_hand():
    """α = 0.75, ε = 3, γ = 0.1, gradients 2, 1, −1 from θ = 1: r stays 1, so the book's
    denominator is √(1 + 3) = 2 and torch's is √1 + 3 = 4 at every step."""
    book, torch_form = [], []
    for eps_inside_sqrt, out in ((True, book), (False, torch_form)):
        p = torch.tensor([1.0], dtype=torch.float64)
        state = rmsprop_init(p)
        for g in (2.0, 1.0, -1.0):
            p, state = rmsprop_step(p, torch.tensor([g], dtype=torch.float64), state, lr=0.1,
                                    alpha=0.75, eps=3.0, eps_inside_sqrt=eps_inside_sqrt)
            assert state["square_avg"].item() == 1.0
            out.append(p.item())
    assert book == pytest.approx([0.9, 0.85, 0.9], abs=1e-15)
    assert torch_form == pytest.approx([0.95, 0.925, 0.95], abs=1e-15)


def test_nesterov_by_hand():
    """f(θ) = θ²/2 from θ = 1 with α = 0 and ε = 0, so that g/d = sign(g); μ = 0.5, γ = 0.25.
    Algorithm 8.6 by hand (θ̃ = θ + μv, v ← μv − γ sign ∇f(θ̃), θ ← θ + v) gives the interim
    points 1, 0.625, 0.1875, −0.28125, −0.015625; classical momentum gives 1, 0.75, 0.375,
    −0.0625, −0.03125."""
    expected = {True: [0.625, 0.1875, -0.28125, -0.015625],
                False: [0.75, 0.375, -0.0625, -0.03125]}
    for nesterov, points in expected.items():
        p = torch.tensor([1.0], dtype=torch.float64)
        state = rmsprop_init(p, momentum=0.5)
        for want in points:
            grad = p.clone()                                 # ∇f at the stored parameter
            p, state = rmsprop_step(p, grad, state, lr=0.25, alpha=0.0, eps=0.0, momentum=0.5,
                                    nesterov=nesterov)
            assert p.item() == want


def test_eps_inside_sqrt_barely_moves_coordinates_with_tiny_gradients():
    """The docstring's numbers: a first gradient of 1e-8 with α = 0.99 and ε = 1e-8 is
    normalised to ≈ 0.91 by torch's √r + ε and to ≈ 1e-4 by the book's √(r + ε)."""
    p, g = torch.zeros(1, dtype=torch.float64), torch.tensor([1e-8], dtype=torch.float64)
    outside, _ = rmsprop_step(p, g, rmsprop_init(p), lr=1.0, alpha=0.99, eps=1e-8)
    inside, _ = rmsprop_step(p, g, rmsprop_init(p), lr=1.0, alpha=0.99, eps=1e-8,
                             eps_inside_sqrt=True)
    assert -outside.item() == pytest.approx(1 / 1.1, rel=1e-9)
    assert -inside.item() == pytest.approx(1e-4, rel=1e-6)
    # with large gradients the two forms agree
    g = torch.tensor([3.0], dtype=torch.float64)
    outside, _ = rmsprop_step(p, g, rmsprop_init(p), lr=1.0, alpha=0.99, eps=1e-8)
    inside, _ = rmsprop_step(p, g, rmsprop_init(p), lr=1.0, alpha=0.99, eps=1e-8,
                             eps_inside_sqrt=True)
    assert outside.item() == pytest.approx(inside.item(), rel=1e-7)


def test_nesterov_tames_high_momentum():
    """On an ill-conditioned quadratic with μ = 0.99, classical momentum still swings widely
    after 300 steps while the look-ahead gradient of Nesterov damps the swings."""
    curvature = torch.tensor([1.0, 10.0], dtype=torch.float64)
    final = {}
    for nesterov in (False, True):
        theta = torch.ones(2, dtype=torch.float64, requires_grad=True)
        opt = RMSprop([theta], lr=0.01, momentum=0.99, nesterov=nesterov)
        for _ in range(300):
            opt.zero_grad()
            loss = 0.5 * (curvature * theta * theta).sum()
            loss.backward()
            opt.step()
        final[nesterov] = loss.item()
    assert final[False] > 1e-2
    assert final[True] < 1e-6 * final[False]


def test_nesterov_state_dict_has_torchs_keys_and_moves_both_ways():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    ours = run(lambda ps: RMSprop(ps, momentum=0.9, nesterov=True, eps_inside_sqrt=True), a, 20)
    theirs = run(lambda ps: torch.optim.RMSprop(ps, momentum=0.9), b, 20)
    so, st = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert {i: set(s) for i, s in so.items()} == {i: set(s) for i, s in st.items()}
    torch.optim.RMSprop(make_params(torch.float64, "cpu"), momentum=0.9).load_state_dict(
        ours.state_dict())
    # a torch state_dict has no nnbolts options: loaded into nnbolts they are off
    fresh = RMSprop(make_params(torch.float64, "cpu"), momentum=0.9, nesterov=True)
    fresh.load_state_dict(theirs.state_dict())
    assert all(not g["nesterov"] and not g["eps_inside_sqrt"] for g in fresh.param_groups)
    assert all(isinstance(s["step"], int) for s in fresh.state.values())


def test_momentum_switched_on_later_starts_a_zero_buffer():
    p, g = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    _, state = rmsprop_step(p, g, rmsprop_init(p), alpha=0.5)
    with_buffer = dict(state, momentum_buffer=torch.zeros_like(p))
    a, sa = rmsprop_step(p, g, state, alpha=0.5, momentum=0.9)
    b, sb = rmsprop_step(p, g, with_buffer, alpha=0.5, momentum=0.9)
    assert "momentum_buffer" not in state and torch.equal(a, b)
    assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])


# --------------------------------------------------------------------------------------------
# pure functions, devices, schedulers, bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hp", [
    dict(lr=0.05, momentum=0.9, centered=True, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, nesterov=True, eps_inside_sqrt=True, maximize=True),
], ids=kwargs_id)
def test_pure_step_matches_class_and_does_not_mutate(hp, dtype, device):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = rmsprop_init(p, momentum=hp["momentum"], centered=hp.get("centered", False))
    opt_p = p.clone().requires_grad_()
    opt = RMSprop([opt_p], **hp)
    for _ in range(20):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        p_before, g_before = p.clone(), g.clone()
        state_before = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
        new_p, new_state = rmsprop_step(p, g, state, **hp)
        assert torch.equal(p, p_before) and torch.equal(g, g_before), "inputs were mutated"
        for key, value in state_before.items():
            same = torch.equal(state[key], value) if torch.is_tensor(value) else \
                state[key] == value
            assert same, f"state[{key!r}] was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        assert set(new_state) == set(opt.state[opt_p])
        for key, value in new_state.items():
            ref = opt.state[opt_p][key]
            assert torch.equal(value, ref) if torch.is_tensor(value) else value == ref
        assert new_p.device == p.device and new_p.dtype == p.dtype
        p, state = new_p, new_state


def test_init_has_torchs_keys():
    p = torch.zeros(2, 3)
    assert set(rmsprop_init(p)) == {"step", "square_avg"}
    assert set(rmsprop_init(p, momentum=0.9)) == {"step", "square_avg", "momentum_buffer"}
    assert set(rmsprop_init(p, centered=True)) == {"step", "square_avg", "grad_avg"}
    state = rmsprop_init(p, momentum=0.5, centered=True)
    assert state["step"] == 0
    assert all(torch.equal(state[k], torch.zeros(2, 3))
               for k in ("square_avg", "momentum_buffer", "grad_avg"))


def test_pure_step_example():
    p, g = torch.tensor([1.0]), torch.tensor([0.5])
    new_p, state = rmsprop_step(p, g, rmsprop_init(p), lr=0.01, alpha=0.75)
    assert torch.allclose(new_p, torch.tensor([0.98]))
    assert torch.equal(state["square_avg"], torch.tensor([0.0625])) and state["step"] == 1


@pytest.mark.parametrize("kwargs", [
    dict(), dict(momentum=0.9, centered=True, weight_decay=0.1, maximize=True, foreach=True),
    dict(momentum=0.9, centered=True, nesterov=True, eps_inside_sqrt=True),
], ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(RMSprop, kwargs)


def test_pure_steps_on_meta():
    p = torch.empty(4, 3, device="meta", dtype=torch.float64)
    state = rmsprop_init(p, momentum=0.9, centered=True)
    for key in ("square_avg", "momentum_buffer", "grad_avg"):
        assert state[key].device.type == "meta" and state[key].dtype == torch.float64
    for variants in (dict(), dict(nesterov=True, eps_inside_sqrt=True)):
        new_p, new_state = rmsprop_step(p, torch.empty_like(p), state, momentum=0.9,
                                        centered=True, weight_decay=0.1, **variants)
        assert new_p.device.type == "meta" and new_p.dtype == torch.float64
        assert all(v.device.type == "meta" for v in new_state.values() if torch.is_tensor(v))


def test_works_under_lr_scheduler_and_param_groups():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02, "centered": True},  # noqa: E731
                         {"params": ps[2:], "momentum": 0.5}]
    oa = RMSprop(groups(a), lr=0.01, momentum=0.9)
    ob = torch.optim.RMSprop(groups(b), lr=0.01, momentum=0.9)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.OneCycleLR(oa, 0.05, total_steps=100))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.OneCycleLR(ob, 0.05, total_steps=100))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


P = torch.zeros(3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: RMSprop([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: RMSprop([P], eps=-1e-8), ValueError, r"Invalid epsilon value: -1e-08"),
    (lambda: RMSprop([P], momentum=-0.9), ValueError, r"Invalid momentum value: -0.9"),
    (lambda: RMSprop([P], weight_decay=-1), ValueError, r"Invalid weight_decay value: -1"),
    (lambda: RMSprop([P], alpha=-0.5), ValueError, r"Invalid alpha value: -0.5"),
    (lambda: RMSprop([P], alpha=1.5), ValueError, r"Invalid alpha value: 1.5"),
    (lambda: RMSprop([P], nesterov=True), ValueError,
     r"Nesterov momentum requires a momentum > 0"),
    (lambda: RMSprop([P], lr="fast"), TypeError, r"Invalid learning rate: expected a number"),
    (lambda: RMSprop([P], 0.01, 0.99, 1e-8, 0, 0, False, True), TypeError, r"positional"),
    (lambda: rmsprop_init(P, momentum=-1), ValueError, r"Invalid momentum value: -1"),
    (lambda: rmsprop_step(P, P, rmsprop_init(P), alpha=2.0), ValueError,
     r"Invalid alpha value: 2.0"),
    (lambda: rmsprop_step(P, P, rmsprop_init(P), nesterov=True), ValueError,
     r"Nesterov momentum requires a momentum > 0"),
    (lambda: rmsprop_step(P, P, {"step": 0}), ValueError,
     r"state has no 'square_avg'; create the state with rmsprop_init\(param\)"),
    (lambda: rmsprop_step(P, P, {"step": 1.0, "square_avg": P}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 1.0"),
    (lambda: rmsprop_step(P, P, dict(rmsprop_init(P), grad_avg=torch.zeros(3, 1)),
                          centered=True), ValueError, r"state\['grad_avg'\] has shape \(3, 1\)"),
    (lambda: rmsprop_step(P, P, "state"), TypeError, r"expected state to be a dict, got str"),
    (lambda: rmsprop_step(torch.zeros(3, dtype=torch.int32), torch.zeros(3, dtype=torch.int32),
                          {"step": 0, "square_avg": torch.zeros(3, dtype=torch.int32)}),
     TypeError, r"expected a floating tensor for param, got torch.int32"),
    (lambda: rmsprop_step(P, torch.zeros(2), rmsprop_init(P)), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: rmsprop_step(P, torch.zeros(3, device="meta"), rmsprop_init(P)), ValueError,
     r"grad is on meta but param is on cpu"),
    (lambda: rmsprop_step(P, P.double(), rmsprop_init(P)), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
