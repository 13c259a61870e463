"""nnbolts.schedules against torch.optim.lr_scheduler, closed forms, properties and bad input."""

import doctest
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as tls

from nnbolts import schedules as S

EPS = 2.0**-52


# --------------------------------------------------------------------------- torch drivers


def _one_param_sgd(lr, momentum=0.0):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    return p, torch.optim.SGD([p], lr=lr, momentum=momentum)


def drive_torch(make_scheduler, lr, n, *, momentum=0.0, steps_per_epoch=1):
    """Train ``n`` SGD updates; return the lr each update used and torch's closed forms.

    The scheduler is stepped after every ``steps_per_epoch`` updates, as a training loop
    would. The closed forms (``_get_closed_form_lr``, where torch has one) are read at the
    same moments and are ``None`` otherwise.
    """
    p, opt = _one_param_sgd(lr, momentum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # get_lr/closed-form "use get_last_lr"
        scheduler = make_scheduler(opt)
        used, closed = [], []
        for k in range(n):
            used.append(opt.param_groups[0]["lr"])
            closed.append(scheduler._get_closed_form_lr()[0]
                          if hasattr(scheduler, "_get_closed_form_lr") else None)
            p.grad = torch.ones_like(p)
            opt.step()
            if (k + 1) % steps_per_epoch == 0:
                scheduler.step()
    return used, closed


def assert_close_seq(actual, expected, *, rtol, atol, what):
    for t, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if not abs(a - e) <= rtol * abs(e) + atol:
            raise AssertionError(f"{what}: step {t}: torch {a!r} vs nnbolts {e!r}")


LR = 0.3
N = 1000

# (torch scheduler factory, nnbolts schedule, the optimizer's lr, number of updates)
TORCH_CASES = [
    pytest.param(lambda o: tls.StepLR(o, step_size=7, gamma=0.9),
                 S.step_decay(LR, 7, 0.9), LR, N, id="StepLR"),
    pytest.param(lambda o: tls.StepLR(o, step_size=100),
                 S.step_decay(LR, 100), LR, N, id="StepLR-default-gamma"),
    pytest.param(lambda o: tls.MultiStepLR(o, [10, 200, 201, 700], gamma=0.5),
                 S.multistep(LR, [10, 200, 201, 700], 0.5), LR, N, id="MultiStepLR"),
    pytest.param(lambda o: tls.ExponentialLR(o, gamma=0.995),
                 S.exponential(LR, 0.995), LR, N, id="ExponentialLR"),
    pytest.param(lambda o: tls.LinearLR(o, 1.0, 0.01 / LR, total_iters=700),
                 S.linear(LR, 0.01, 700), LR, N, id="LinearLR-decay"),
    pytest.param(lambda o: tls.LinearLR(o, 1.0, 0.0, total_iters=999),
                 S.linear(LR, 0.0, 999), LR, N, id="LinearLR-to-zero"),
    pytest.param(lambda o: tls.LinearLR(o, 0.25, 1.0, total_iters=600),
                 S.linear(0.25 * LR, LR, 600), LR, N, id="LinearLR-ramp"),
    pytest.param(lambda o: tls.PolynomialLR(o, total_iters=800, power=1.0),
                 S.polynomial(LR, 800), LR, N, id="PolynomialLR-p1"),
    pytest.param(lambda o: tls.PolynomialLR(o, total_iters=900, power=2.0),
                 S.polynomial(LR, 900, power=2.0), LR, N, id="PolynomialLR-p2"),
    pytest.param(lambda o: tls.PolynomialLR(o, total_iters=1000, power=0.5),
                 S.polynomial(LR, 1000, power=0.5), LR, N + 50, id="PolynomialLR-p0.5"),
    pytest.param(lambda o: tls.CosineAnnealingLR(o, T_max=N),
                 S.cosine(LR, N), LR, N + 1, id="CosineAnnealingLR"),
    pytest.param(lambda o: tls.CosineAnnealingLR(o, T_max=N, eta_min=0.002),
                 S.cosine(LR, N, 0.002), LR, N + 1, id="CosineAnnealingLR-eta_min"),
    pytest.param(lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=37),
                 S.cosine_restarts(LR, 37), LR, N, id="CosineAnnealingWarmRestarts"),
    pytest.param(lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=20, T_mult=2, eta_min=1e-3),
                 S.cosine_restarts(LR, 20, 2, 1e-3), LR, N, id="CosineAnnealingWarmRestarts-x2"),
    pytest.param(lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=3),
                 S.cosine_restarts(LR, 3, 3), LR, N, id="CosineAnnealingWarmRestarts-x3"),
    pytest.param(lambda o: tls.CyclicLR(o, 0.01, LR, step_size_up=70, step_size_down=30,
                                        cycle_momentum=False),
                 S.cyclic(0.01, LR, 70, 30), LR, N, id="CyclicLR-triangular"),
    pytest.param(lambda o: tls.CyclicLR(o, 0.01, LR, step_size_up=50, mode="triangular2",
                                        cycle_momentum=False),
                 S.cyclic(0.01, LR, 50, mode="triangular2"), LR, N, id="CyclicLR-triangular2"),
    pytest.param(lambda o: tls.CyclicLR(o, 0.01, LR, step_size_up=45, step_size_down=55,
                                        mode="exp_range", gamma=0.999, cycle_momentum=False),
                 S.cyclic(0.01, LR, 45, 55, mode="exp_range", gamma=0.999), LR, N,
                 id="CyclicLR-exp_range"),
    # OneCycleLR cycles SGD's momentum too (harmless here); the optimizer is given momentum.
    pytest.param(lambda o: tls.OneCycleLR(o, LR, total_steps=N),
                 S.one_cycle(LR, N), LR, N, id="OneCycleLR-cos"),
    pytest.param(lambda o: tls.OneCycleLR(o, LR, total_steps=N, pct_start=0.25,
                                          anneal_strategy="linear", div_factor=10.0,
                                          final_div_factor=100.0),
                 S.one_cycle(LR, N, 0.25, "linear", 10.0, 100.0), LR, N, id="OneCycleLR-linear"),
    pytest.param(lambda o: tls.OneCycleLR(o, LR, total_steps=N + 3, pct_start=0.35,
                                          three_phase=True),
                 S.one_cycle(LR, N + 3, 0.35, three_phase=True), LR, N + 3,
                 id="OneCycleLR-three_phase"),
    pytest.param(lambda o: tls.OneCycleLR(o, LR, total_steps=N + 7, pct_start=0.3,
                                          anneal_strategy="linear", three_phase=True),
                 S.one_cycle(LR, N + 7, 0.3, "linear", three_phase=True), LR, N + 7,
                 id="OneCycleLR-three_phase-linear"),
    pytest.param(lambda o: tls.SequentialLR(o, [tls.LinearLR(o, 0.1, 1.0, total_iters=100),
                                                tls.CosineAnnealingLR(o, T_max=900,
                                                                      eta_min=1e-3)], [100]),
                 S.warmup(S.cosine(LR, 900, 1e-3), 100, start_factor=0.1), LR, N + 1,
                 id="SequentialLR-warmup-cosine"),
    pytest.param(lambda o: tls.SequentialLR(o, [tls.ConstantLR(o, 0.5, total_iters=10**6),
                                                tls.ExponentialLR(o, 0.99),
                                                tls.LambdaLR(o, lambda t: 1 / (1 + 0.01 * t))],
                                            [100, 400]),
                 S.sequence([S.constant(0.5 * LR), S.exponential(LR, 0.99),
                             S.inverse_time(LR, 0.01)], [100, 400]), LR, N,
                 id="SequentialLR-LambdaLR"),
    pytest.param(lambda o: tls.LambdaLR(o, lambda t: math.sqrt(10 / (t + 10))),
                 S.inverse_sqrt(LR, warmup_steps=10), LR, N, id="LambdaLR-inverse_sqrt"),
]


@pytest.mark.parametrize("make_scheduler, schedule, lr, n", TORCH_CASES)
def test_matches_torch_scheduler(make_scheduler, schedule, lr, n):
    used, closed = drive_torch(make_scheduler, lr, n, momentum=0.9)
    ours = [schedule(t) for t in range(n)]
    # torch mostly updates the rate recursively (lr_t = lr_{t-1} * factor_t), so it carries
    # one rounding per step: ~1e-14 relative after 1000 steps, far inside 1e-12. CyclicLR and
    # OneCycleLR locate the step in its cycle with floats (t / cycle_length), and OneCycleLR's
    # linear anneal ends with (end - start) * 1 + start, which cancels: both leave an absolute
    # error of a few ulps of the schedule's largest rate, hence the atol of 4 ulps of it.
    peak = max(ours)
    assert_close_seq(used, ours, rtol=1e-12, atol=4 * EPS * peak, what="optimizer lr")
    # Where torch has a closed form it is the same formula with its operations possibly in
    # another order: a few roundings apart.
    if closed[0] is not None:
        assert_close_seq(closed, ours, rtol=1e-14, atol=0.0, what="closed form")


def test_per_epoch_matches_torch_stepped_per_epoch():
    steps_per_epoch, epochs = 13, 80
    used, _ = drive_torch(lambda o: tls.StepLR(o, step_size=5, gamma=0.5), LR,
                          steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch)
    schedule = S.per_epoch(S.step_decay(LR, 5, 0.5), steps_per_epoch)
    assert used == [schedule(t) for t in range(steps_per_epoch * epochs)]


def test_cosine_is_constant_after_total_steps():
    s = S.cosine(1.0, 100, final_lr=0.1)
    assert s(100) == 0.1
    assert all(s(t) == 0.1 for t in (101, 150, 200, 10**9))


def test_one_cycle_holds_min_lr_after_the_cycle():
    s = S.one_cycle(1.0, 100, div_factor=10.0, final_div_factor=10.0)
    assert s(99) == pytest.approx(0.01, rel=1e-15)
    assert s(100) == s(10**6) == pytest.approx(0.01, rel=1e-15)


# --------------------------------------------------------------------------- closed forms


def test_dl_book_linear_decay_values():
    eps0, eps_tau, tau = 0.5, 0.01, 200
    s = S.linear(eps0, eps_tau, tau)
    assert s(0) == eps0
    assert s(tau // 2) == pytest.approx(0.5 * eps0 + 0.5 * eps_tau, rel=1e-15)
    assert s(tau // 4) == pytest.approx(0.75 * eps0 + 0.25 * eps_tau, rel=1e-15)
    assert s(tau) == eps_tau
    assert s(2 * tau) == eps_tau
    assert s(10**9) == eps_tau


def test_deck_linear_decay_to_zero_is_polynomial_power_one():
    # 002: alpha = alpha_0 (1 - t / max_steps)
    a = S.linear(0.2, 0.0, 50)
    b = S.polynomial(0.2, 50)
    for t in range(60):
        assert a(t) == pytest.approx(0.2 * (1 - min(t, 50) / 50), rel=1e-15, abs=1e-18)
        assert a(t) == pytest.approx(b(t), rel=1e-15, abs=1e-18)


def test_inverse_time_values():
    s = S.inverse_time(0.8, decay_rate=0.5, decay_steps=10)
    for t in (0, 1, 10, 20, 60, 12345):
        assert s(t) == pytest.approx(0.8 / (1 + 0.5 * t / 10), rel=1e-15)
    assert s(20) == 0.4
    assert S.inverse_time(0.3, 0.0)(10**6) == 0.3


def test_inverse_sqrt_values():
    s = S.inverse_sqrt(1.0)
    assert [s(t) for t in (0, 3, 8, 99)] == [1.0, 0.5, 1 / 3, 0.1]
    w = 400
    s = S.inverse_sqrt(0.7, warmup_steps=w)
    assert s(0) == 0.7
    for t in (1, 100, 400, 1200, 10**6):
        assert s(t) == pytest.approx(0.7 * math.sqrt(w / (t + w)), rel=1e-15)


@pytest.mark.parametrize("w", [1, 4, 100])
def test_warmup_inverse_sqrt_is_the_transformer_schedule(w):
    # lr * min(t / w, sqrt(w / max(t, w))) on the overall step count.
    s = S.warmup(S.inverse_sqrt(2.0, warmup_steps=w), w)
    for t in list(range(3 * w)) + [10 * w, 1000 * w]:
        expected = 2.0 * min(t / w, math.sqrt(w / max(t, w)))
        assert s(t) == pytest.approx(expected, rel=1e-14)
    # T5's form: flat for w steps, then lr * sqrt(w / t)
    s = S.warmup(S.inverse_sqrt(2.0, warmup_steps=w), w, start_factor=1.0)
    for t in list(range(3 * w)) + [10 * w]:
        assert s(t) == pytest.approx(2.0 * math.sqrt(w / max(t, w)), rel=1e-14)


def test_exponential_continuous_and_epoch_forms():
    k = 0.01
    s = S.exponential(0.5, math.exp(-k))
    for t in (0, 1, 10, 500):
        assert s(t) == pytest.approx(0.5 * math.exp(-k * t), rel=1e-13)
    eta0, epsilon = 0.1, 0.2  # the epoch form eta0 ** (1 + e * epsilon)
    s = S.exponential(eta0, eta0**epsilon)
    for e in range(20):
        assert s(e) == pytest.approx(eta0 ** (1 + e * epsilon), rel=1e-13)


def test_warmup_values_and_shift():
    inner = S.exponential(1.0, 0.5)
    s = S.warmup(inner, warmup_steps=4, start_factor=0.2)
    assert [s(t) for t in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8], rel=1e-15)
    # the wrapped schedule starts its own clock when the warmup ends
    assert [s(t) for t in range(4, 8)] == [inner(0), inner(1), inner(2), inner(3)]
    s = S.warmup(S.constant(0.1), 10)
    assert s(0) == 0.0
    assert s(5) == pytest.approx(0.05, rel=1e-15)
    assert s(10) == 0.1


def test_warmup_equals_sequence_with_linear_ramp():
    inner = S.cosine(0.4, 300, 0.01)
    a = S.warmup(inner, 50, start_factor=0.1)
    b = S.sequence([S.linear(0.04, 0.4, 50), inner], [50])
    for t in range(400):
        assert a(t) == pytest.approx(b(t), rel=1e-14)


def test_sequence_values():
    parts = [S.constant(1.0), S.step_decay(0.5, 2, 0.5), S.linear(0.1, 0.0, 10)]
    s = S.sequence(parts, [3, 7])
    expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25] + [parts[2](t) for t in range(20)]
    assert [s(t) for t in range(27)] == expected
    assert S.sequence([S.constant(0.3)], [])(10**6) == 0.3


def test_per_epoch_values():
    s = S.per_epoch(S.step_decay(1.0, 2, 0.1), steps_per_epoch=3)
    assert [s(t) for t in range(13)] == [1.0] * 6 + [0.1] * 6 + [pytest.approx(0.01)]


def test_cyclic_values():
    s = S.cyclic(1.0, 3.0, step_size_up=2, step_size_down=4, mode="triangular2")
    assert [s(t) for t in range(13)] == [1.0, 2.0, 3.0, 2.5, 2.0, 1.5, 1.0, 1.5, 2.0, 1.75, 1.5,
                                         1.25, 1.0]
    s = S.cyclic(0.0, 1.0, step_size_up=2, mode="exp_range", gamma=0.5)
    assert [s(t) for t in range(4)] == [0.0, 0.25, 0.25, 0.0625]


def test_lr_at():
    s = S.cosine(1.0, 10)
    table = S.lr_at(s, 12)
    assert isinstance(table, np.ndarray) and table.dtype == np.float64
    assert table.tolist() == [s(t) for t in range(12)]
    assert S.lr_at(s, np.arange(0, 12, 3)).tolist() == [s(0), s(3), s(6), s(9)]
    assert S.lr_at(s, 0).shape == (0,)


def test_module_docstring_examples():
    result = doctest.testmod(S, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- the step argument


@pytest.mark.parametrize("step, exc, match", [
    (-1, ValueError, r"Invalid step: -1"),
    (True, TypeError, r"expected step to be an int, got bool"),
    (2.0, TypeError, r"expected step to be an int, got float"),
    ("3", TypeError, r"expected step to be an int, got str"),
    (torch.tensor(3), TypeError, r"expected step to be an int, got Tensor"),
])
def test_bad_step(step, exc, match):
    for s in (S.constant(0.1), S.warmup(S.cosine(0.1, 10), 5)):
        with pytest.raises(exc, match=match):
            s(step)


def test_numpy_integer_steps_are_accepted():
    s = S.exponential(1.0, 0.5)
    assert s(np.int64(3)) == 0.125
    assert isinstance(s(np.int32(1)), float)


# --------------------------------------------------------------------------- to_lambda_lr


def _train(model, opt, scheduler, schedules, steps):
    """A few real training steps; check every group's lr against its schedule before each."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, generator=g), torch.randn(32, 1, generator=g)
    for t in range(steps):
        for group, schedule in zip(opt.param_groups, schedules, strict=True):
            assert group["lr"] == schedule(t), (t, group["lr"], schedule(t))
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        scheduler.step()


def test_to_lambda_lr_single_group_exact():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    schedule = S.warmup(S.cosine(0.1, 40, 1e-3), 10)
    scheduler = S.to_lambda_lr(opt, schedule)
    assert isinstance(scheduler, tls.LambdaLR)
    _train(model, opt, scheduler, [schedule], 60)
    assert scheduler.get_last_lr() == [schedule(60)]
    # the multipliers LambdaLR keeps are schedule / initial lr
    assert scheduler.lr_lambdas[0](7) == pytest.approx(schedule(7) / 0.3, rel=1e-15)


def test_to_lambda_lr_multiple_groups():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    groups = [{"params": [model.weight], "lr": 0.01}, {"params": [model.bias], "lr": 0.7}]
    # one schedule for every group: every group gets the same rate
    opt = torch.optim.Adam(groups)
    schedule = S.one_cycle(0.05, 30)
    _train(model, opt, S.to_lambda_lr(opt, schedule), [schedule, schedule], 30)
    # one schedule per group
    opt = torch.optim.SGD(groups)
    schedules = [S.exponential(0.01, 0.9), S.cyclic(0.1, 0.7, 3, mode="triangular2")]
    _train(model, opt, S.to_lambda_lr(opt, schedules), schedules, 30)


def test_to_lambda_lr_uses_existing_initial_lr():
    # a scheduler that ran before has left "initial_lr" in the groups: LambdaLR divides by it
    _, opt = _one_param_sgd(0.5)
    previous = tls.StepLR(opt, step_size=1, gamma=0.1)
    opt.step()
    previous.step()
    assert opt.param_groups[0]["lr"] != 0.5
    schedule = S.exponential(0.2, 0.5)
    scheduler = S.to_lambda_lr(opt, schedule)
    for t in range(5):
        assert opt.param_groups[0]["lr"] == schedule(t)
        opt.step()
        scheduler.step()


def test_to_lambda_lr_state_dict_resumes(tmp_path):
    schedule = S.cosine_restarts(0.1, 7, 2)
    p, opt = _one_param_sgd(0.1)
    scheduler = S.to_lambda_lr(opt, schedule)
    for _ in range(11):
        opt.step()
        scheduler.step()
    path = tmp_path / "sched.pt"
    torch.save(scheduler.state_dict(), path)
    state = torch.load(path, weights_only=True)  # plain numbers only
    _, opt2 = _one_param_sgd(0.1)
    resumed = S.to_lambda_lr(opt2, schedule)
    resumed.load_state_dict(state)
    for t in range(11, 30):
        opt.step()
        scheduler.step()
        opt2.step()
        resumed.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == schedule(t + 1)


def test_to_lambda_lr_bad_input():
    p, opt = _one_param_sgd(0.0)
    with pytest.raises(ValueError, match=r"Invalid learning rate in param_groups\[0\]: 0.0"):
        S.to_lambda_lr(opt, S.constant(0.1))
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias]}], lr=0.1)
    with pytest.raises(ValueError, match=r"a list of 1 schedules for 2 parameter groups"):
        S.to_lambda_lr(opt, [S.constant(0.1)])
    with pytest.raises(TypeError, match=r"expected schedule\[1\] to be a schedule"):
        S.to_lambda_lr(opt, [S.constant(0.1), 0.1])
    with pytest.raises(TypeError, match=r"expected optimizer to be a torch.optim.Optimizer"):
        S.to_lambda_lr([p], S.constant(0.1))


# --------------------------------------------------------------------------- properties

# Rates are computed in floating point, so a non-increasing formula can step up, or a bounded
# one step out of its bounds, by a rounding error: the properties allow a few ulps of the
# largest rate.
def _slack(lr):
    return 8 * math.ulp(lr)


rates = st.floats(1e-6, 10.0)
fractions = st.floats(0.0, 1.0)
factors = st.floats(0.01, 1.0)
steps = st.integers(0, 10**6)
small_ints = st.integers(1, 2000)


@st.composite
def decaying(draw):
    """(schedule, initial lr, final lr): a schedule that never increases."""
    lr = draw(rates)
    final = lr * draw(fractions)
    kind = draw(st.sampled_from(["step", "multi", "exp", "inv_time", "inv_sqrt", "linear",
                                 "poly", "cos", "per_epoch"]))
    if kind == "step":
        return S.step_decay(lr, draw(small_ints), draw(factors)), lr, 0.0
    if kind == "multi":
        ms = sorted(draw(st.sets(st.integers(1, 10**5), max_size=5)))
        return S.multistep(lr, ms, draw(factors)), lr, 0.0
    if kind == "exp":
        return S.exponential(lr, draw(factors)), lr, 0.0
    if kind == "inv_time":
        return S.inverse_time(lr, draw(st.floats(0.0, 10.0)), draw(small_ints)), lr, 0.0
    if kind == "inv_sqrt":
        return S.inverse_sqrt(lr, draw(st.integers(0, 2000))), lr, 0.0
    if kind == "linear":
        return S.linear(lr, final, draw(small_ints)), lr, final
    if kind == "poly":
        return S.polynomial(lr, draw(small_ints), final, draw(st.floats(0.1, 5.0))), lr, final
    if kind == "cos":
        return S.cosine(lr, draw(small_ints), final), lr, final
    return S.per_epoch(S.cosine(lr, draw(small_ints), final), draw(small_ints)), lr, final


@settings(max_examples=200, deadline=None)
@given(decaying(), steps, steps)
def test_decaying_schedules_are_monotone_and_bounded(case, t1, t2):
    schedule, lr, final = case
    t1, t2 = min(t1, t2), max(t1, t2)
    a, b = schedule(t1), schedule(t2)
    tol = _slack(lr)
    assert final - tol <= b <= a + tol
    assert a <= lr + tol
    assert schedule(0) == pytest.approx(lr, rel=1e-15)


@settings(max_examples=100, deadline=None)
@given(rates, fractions, st.integers(1, 500), st.none() | st.integers(1, 500),
       st.sampled_from(["triangular", "triangular2", "exp_range"]), factors, steps)
def test_cyclic_stays_within_base_and_max(max_lr, frac, up, down, mode, gamma, t):
    base = max_lr * frac
    s = S.cyclic(base, max_lr, up, down, mode, gamma)
    assert base - _slack(max_lr) <= s(t) <= max_lr + _slack(max_lr)
    assert s(0) == base


@settings(max_examples=100, deadline=None)
@given(rates, st.integers(100, 10**5), st.floats(0.05, 0.45), st.booleans(),
       st.sampled_from(["cos", "linear"]), steps)
def test_one_cycle_stays_within_min_and_max(max_lr, total, pct, three, anneal, t):
    s = S.one_cycle(max_lr, total, pct, anneal, three_phase=three)
    low = max_lr / 25.0 / 1e4
    assert low - _slack(max_lr) <= s(t) <= max_lr + _slack(max_lr)


@settings(max_examples=100, deadline=None)
@given(rates, fractions, st.integers(1, 300), st.integers(1, 3), steps)
def test_cosine_restarts_stays_within_final_and_lr(lr, frac, period, mult, t):
    s = S.cosine_restarts(lr, period, mult, lr * frac)
    assert lr * frac - _slack(lr) <= s(t) <= lr + _slack(lr)


@st.composite
def any_schedule(draw, depth=2):
    lr = draw(rates)
    makers = [
        lambda: S.constant(lr),
        lambda: S.step_decay(lr, draw(small_ints), draw(factors)),
        lambda: S.multistep(lr, sorted(draw(st.sets(small_ints, max_size=4))), draw(factors)),
        lambda: S.exponential(lr, draw(factors)),
        lambda: S.inverse_time(lr, draw(st.floats(0.0, 5.0)), draw(small_ints)),
        lambda: S.inverse_sqrt(lr, draw(st.integers(0, 100))),
        lambda: S.linear(lr, lr * draw(fractions), draw(small_ints)),
        lambda: S.polynomial(lr, draw(small_ints), lr * draw(fractions), draw(factors)),
        lambda: S.cosine(lr, draw(small_ints), lr * draw(fractions)),
        lambda: S.cosine_restarts(lr, draw(small_ints), draw(st.integers(1, 3))),
        lambda: S.cyclic(lr * draw(fractions), lr, draw(small_ints),
                         mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
                         gamma=draw(factors)),
        lambda: S.one_cycle(lr, draw(st.integers(100, 5000)), draw(st.floats(0.1, 0.4)),
                            draw(st.sampled_from(["cos", "linear"])),
                            three_phase=draw(st.booleans())),
    ]
    if depth > 0:
        inner = lambda: draw(any_schedule(depth=depth - 1))
        makers += [
            lambda: S.warmup(inner(), draw(small_ints), draw(fractions)),
            lambda: S.sequence([inner(), inner()], [draw(small_ints)]),
            lambda: S.per_epoch(inner(), draw(small_ints)),
        ]
    return draw(st.sampled_from(makers))()


@settings(max_examples=100, deadline=None)
@given(any_schedule(), st.lists(steps, min_size=1, max_size=5))
def test_every_schedule_pickles(schedule, ts):
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule
    assert repr(copy) == repr(schedule)
    assert [copy(t) for t in ts] == [schedule(t) for t in ts]
    assert all(isinstance(schedule(t), float) and math.isfinite(schedule(t)) for t in ts)


def test_repr_reads_like_the_call():
    s = S.warmup(S.cosine(0.1, 900), 100)
    assert repr(s) == ("warmup(schedule=cosine(lr=0.1, total_steps=900, final_lr=0.0), "
                       "warmup_steps=100, start_factor=0.0)")
    assert repr(S.multistep(1, [3, 5])) == "multistep(lr=1.0, milestones=(3, 5), gamma=0.1)"
    assert S.cosine(0.1, 900) == S.cosine(0.1, 900) != S.cosine(0.1, 901)
    assert hash(S.cosine(0.1, 900)) == hash(S.cosine(0.1, 900))


# --------------------------------------------------------------------------- bad input

C = S.constant(0.1)

BAD_INPUT = [
    (S.constant, dict(lr=0.0), ValueError, r"Invalid lr: 0.0 \(must be > 0.0\)"),
    (S.constant, dict(lr=-0.1), ValueError, r"Invalid lr: -0.1"),
    (S.constant, dict(lr=math.inf), ValueError, r"Invalid lr: inf \(must be finite\)"),
    (S.constant, dict(lr=math.nan), ValueError, r"Invalid lr: nan"),
    (S.constant, dict(lr="0.1"), TypeError, r"Invalid lr: expected a number, got str"),
    (S.constant, dict(lr=True), TypeError, r"Invalid lr: expected a number, got bool"),
    (S.step_decay, dict(lr=0.1, step_size=0), ValueError, r"Invalid step_size: 0 \(must be >= 1\)"),
    (S.step_decay, dict(lr=0.1, step_size=2.5), TypeError, r"expected step_size to be an int"),
    (S.step_decay, dict(lr=0.1, step_size=5, gamma=0.0), ValueError, r"Invalid gamma: 0.0"),
    (S.step_decay, dict(lr=0.1, step_size=5, gamma=-0.5), ValueError, r"Invalid gamma: -0.5"),
    (S.step_decay, dict(lr=0.1, step_size=5, gamma=1.5), ValueError,
     r"Invalid gamma: 1.5 \(must be <= 1.0\)"),
    (S.multistep, dict(lr=0.1, milestones=[5, 3]), ValueError,
     r"Invalid milestones: \[5, 3\] \(must be strictly increasing\)"),
    (S.multistep, dict(lr=0.1, milestones=[5, 5]), ValueError, r"Invalid milestones: \[5, 5\]"),
    (S.multistep, dict(lr=0.1, milestones=[0, 3]), ValueError,
     r"Invalid milestones\[0\]: 0 \(must be >= 1\)"),
    (S.multistep, dict(lr=0.1, milestones=10), TypeError, r"expected milestones to be a list"),
    (S.multistep, dict(lr=0.1, milestones=[2], gamma=0), ValueError, r"Invalid gamma: 0"),
    (S.exponential, dict(lr=0.1, gamma=0.0), ValueError, r"Invalid gamma: 0.0 \(must be > 0.0\)"),
    (S.exponential, dict(lr=-1.0, gamma=0.9), ValueError, r"Invalid lr: -1.0"),
    (S.inverse_time, dict(lr=0.1, decay_rate=-0.1), ValueError, r"Invalid decay_rate: -0.1"),
    (S.inverse_time, dict(lr=0.1, decay_rate=0.1, decay_steps=0), ValueError,
     r"Invalid decay_steps: 0 \(must be >= 1\)"),
    (S.inverse_sqrt, dict(lr=0.1, warmup_steps=-1), ValueError,
     r"Invalid warmup_steps: -1 \(must be >= 0\)"),
    (S.linear, dict(lr=0.1, final_lr=-0.01, total_steps=10), ValueError,
     r"Invalid final_lr: -0.01"),
    (S.linear, dict(lr=0.1, final_lr=0.0, total_steps=0), ValueError,
     r"Invalid total_steps: 0 \(must be >= 1\)"),
    (S.polynomial, dict(lr=0.1, total_steps=10, power=0.0), ValueError, r"Invalid power: 0.0"),
    (S.polynomial, dict(lr=0.1, total_steps=-5), ValueError, r"Invalid total_steps: -5"),
    (S.polynomial, dict(lr=0.1, total_steps=5, final_lr=0.2), ValueError,
     r"Invalid final_lr: 0.2 \(must be <= lr=0.1\)"),
    (S.cosine, dict(lr=0.1, total_steps=0), ValueError, r"Invalid total_steps: 0 \(must be >= 1\)"),
    (S.cosine, dict(lr=0.1, total_steps=10, final_lr=0.5), ValueError, r"Invalid final_lr: 0.5"),
    (S.cosine, dict(lr=0.0, total_steps=10), ValueError, r"Invalid lr: 0.0"),
    (S.cosine_restarts, dict(lr=0.1, first_period=0), ValueError,
     r"Invalid first_period: 0 \(must be >= 1\)"),
    (S.cosine_restarts, dict(lr=0.1, first_period=10, period_mult=0), ValueError,
     r"Invalid period_mult: 0 \(must be >= 1\)"),
    (S.cosine_restarts, dict(lr=0.1, first_period=10, period_mult=1.5), TypeError,
     r"expected period_mult to be an int, got float"),
    (S.cyclic, dict(base_lr=0.1, max_lr=0.01, step_size_up=5), ValueError,
     r"Invalid max_lr: 0.01 \(must be >= base_lr=0.1\)"),
    (S.cyclic, dict(base_lr=-0.1, max_lr=0.1, step_size_up=5), ValueError,
     r"Invalid base_lr: -0.1"),
    (S.cyclic, dict(base_lr=0.0, max_lr=0.1, step_size_up=0), ValueError,
     r"Invalid step_size_up: 0 \(must be >= 1\)"),
    (S.cyclic, dict(base_lr=0.0, max_lr=0.1, step_size_up=5, step_size_down=0), ValueError,
     r"Invalid step_size_down: 0 \(must be >= 1\)"),
    (S.cyclic, dict(base_lr=0.0, max_lr=0.1, step_size_up=5, mode="triangle"), ValueError,
     r"Invalid mode: 'triangle'; expected one of \['exp_range', 'triangular', 'triangular2'\]"),
    (S.cyclic, dict(base_lr=0.0, max_lr=0.1, step_size_up=5, mode="exp_range", gamma=0.0),
     ValueError, r"Invalid gamma: 0.0"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, pct_start=0.0), ValueError,
     r"Invalid pct_start: 0.0 \(must be > 0.0\)"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, pct_start=1.0), ValueError,
     r"Invalid pct_start: 1.0 \(must be < 1.0\)"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, pct_start=1.5), ValueError,
     r"Invalid pct_start: 1.5"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, pct_start=0.1), ValueError,
     r"Invalid pct_start: 0.1 with total_steps=10 \(a phase of the cycle would have no steps"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, pct_start=0.6, three_phase=True), ValueError,
     r"Invalid pct_start: 0.6 with total_steps=100 and three_phase=True"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=0), ValueError,
     r"Invalid total_steps: 0 \(must be >= 1\)"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, anneal="cosine"), ValueError,
     r"Invalid anneal: 'cosine'; expected one of \['cos', 'linear'\]"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, div_factor=0.0), ValueError,
     r"Invalid div_factor: 0.0"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, final_div_factor=-1.0), ValueError,
     r"Invalid final_div_factor: -1.0"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=100, three_phase=1), TypeError,
     r"expected three_phase to be a bool, got int"),
    (S.one_cycle, dict(max_lr=-0.1, total_steps=100), ValueError, r"Invalid max_lr: -0.1"),
    (S.warmup, dict(schedule=C, warmup_steps=0), ValueError,
     r"Invalid warmup_steps: 0 \(must be >= 1\)"),
    (S.warmup, dict(schedule=C, warmup_steps=5, start_factor=1.5), ValueError,
     r"Invalid start_factor: 1.5 \(must be <= 1.0\)"),
    (S.warmup, dict(schedule=C, warmup_steps=5, start_factor=-0.5), ValueError,
     r"Invalid start_factor: -0.5"),
    (S.warmup, dict(schedule=0.1, warmup_steps=5), TypeError,
     r"expected schedule to be a schedule \(a callable step -> lr\), got float"),
    (S.sequence, dict(schedules=[C, C], boundaries=[]), ValueError,
     r"Invalid boundaries: \[\] \(need len\(schedules\) - 1 = 1 boundaries, got 0\)"),
    (S.sequence, dict(schedules=[C], boundaries=[5]), ValueError, r"Invalid boundaries: \[5\]"),
    (S.sequence, dict(schedules=[C, C, C], boundaries=[5, 5]), ValueError,
     r"Invalid boundaries: \[5, 5\] \(must be strictly increasing\)"),
    (S.sequence, dict(schedules=[C, C], boundaries=[0]), ValueError,
     r"Invalid boundaries\[0\]: 0 \(must be >= 1\)"),
    (S.sequence, dict(schedules=[], boundaries=[]), ValueError, r"Invalid schedules: \[\]"),
    (S.sequence, dict(schedules=[C, "x"], boundaries=[3]), TypeError,
     r"expected schedules\[1\] to be a schedule"),
    (S.sequence, dict(schedules=C, boundaries=[3]), TypeError,
     r"expected schedules to be a list of schedules"),
    (S.per_epoch, dict(schedule=C, steps_per_epoch=0), ValueError,
     r"Invalid steps_per_epoch: 0 \(must be >= 1\)"),
    (S.per_epoch, dict(schedule=None, steps_per_epoch=3), TypeError,
     r"expected schedule to be a schedule"),
    (S.lr_at, dict(schedule=C, steps=-1), ValueError, r"Invalid steps: -1 \(must be >= 0\)"),
    (S.lr_at, dict(schedule=C, steps=2.5), TypeError, r"expected steps to be an int or an iter"),
    (S.lr_at, dict(schedule=C, steps=[0, -2]), ValueError, r"Invalid step: -2"),
]


@pytest.mark.parametrize("factory, kwargs, exc, match", BAD_INPUT,
                         ids=[f"{f.__name__}-{i}" for i, (f, *_) in enumerate(BAD_INPUT)])
def test_bad_input(factory, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        factory(**kwargs)


# --------------------------------------------------------------------------- range test


def _regression_recipe(seed):
    """A small MLP on a fixed regression problem, three minibatches, SGD with momentum."""
    g = torch.Generator().manual_seed(1000 + seed)
    X = torch.randn(24, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    net.double()
    opt = torch.optim.SGD(net.parameters(), lr=0.123, momentum=0.9)
    return net, opt, torch.nn.functional.mse_loss, [(X[i:i + 8], y[i:i + 8]) for i in (0, 8, 16)]


@pytest.mark.parametrize("seed", [0, 1])
def test_range_test_matches_torch_exponential_lr(seed):
    # The same run written with torch's own scheduler: ExponentialLR from lr_min by the factor
    # (lr_max / lr_min) ** (1 / (N - 1)), and a bias-corrected moving average.
    lr_min, lr_max, n, beta = 1e-3, 3.0, 40, 0.7
    lrs, smooth = S.range_test(_regression_recipe, lr_min, lr_max, n, seed=seed, beta=beta)
    net, opt, loss_fn, batches = _regression_recipe(seed)
    for group in opt.param_groups:
        group["lr"] = lr_min
        group["initial_lr"] = lr_min
    sched = tls.ExponentialLR(opt, gamma=(lr_max / lr_min) ** (1 / (n - 1)))
    want_lrs, want, avg = [], [], 0.0
    for t in range(n):
        want_lrs.append(opt.param_groups[0]["lr"])
        x, y = batches[t % 3]
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        avg = beta * avg + (1 - beta) * loss.item()
        want.append(avg / (1 - beta ** (t + 1)))
    assert len(lrs) == len(smooth) == n
    assert all(type(v) is float for v in lrs + smooth)
    assert lrs[0] == lr_min and math.isclose(lrs[-1], lr_max, rel_tol=1e-12)
    np.testing.assert_allclose(lrs, want_lrs, rtol=1e-12)
    np.testing.assert_allclose(smooth, want, rtol=1e-9)
    # the curve is what a range test should show: it falls, bottoms out and rises at the end
    best = int(np.argmin(smooth))
    assert 0 < best < n - 1 and smooth[-1] > 2 * smooth[best]


def test_range_test_is_reproducible_and_depends_on_seed():
    a = S.range_test(_regression_recipe, 1e-3, 1.0, 10, seed=3)
    assert a == S.range_test(_regression_recipe, 1e-3, 1.0, 10, seed=3)
    assert a[1] != S.range_test(_regression_recipe, 1e-3, 1.0, 10, seed=4)[1]


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lr_min=0.0), ValueError, r"Invalid lr_min"),
    (dict(lr_max=1e-4), ValueError, r"Invalid lr_max: 0.0001 \(must be > lr_min"),
    (dict(steps=1), ValueError, r"Invalid steps"),
    (dict(beta=1.0), ValueError, r"Invalid beta"),
    (dict(recipe="mlp"), TypeError, r"expected recipe to be a callable"),
])
def test_range_test_bad_arguments(kwargs, exc, match):
    args = dict(recipe=_regression_recipe, lr_min=1e-3, lr_max=1.0, steps=5) | kwargs
    with pytest.raises(exc, match=match):
        S.range_test(**args)


# --------------------------------------------------------------------------- grading (05)

# The configurations of the hidden tests of solutions/05-schedules for the schedules that
# assignment added with issue 13.
_GRADED_CONFIGS = {
    "polynomial": [dict(lr=0.1, total_steps=800, power=2.0),
                   dict(lr=0.5, total_steps=300, final_lr=0.05, power=0.5),
                   dict(lr=1.0, total_steps=999, final_lr=0.001),
                   dict(lr=0.2, total_steps=37, final_lr=0.02, power=3.0)],
    "inverse_sqrt": [dict(lr=0.1), dict(lr=0.5, warmup_steps=100), dict(lr=1.0, warmup_steps=1),
                     dict(lr=0.01, warmup_steps=4000)],
    "cosine_restarts": [dict(lr=0.1, first_period=100, period_mult=2),
                        dict(lr=0.5, first_period=37, final_lr=0.05),
                        dict(lr=1.0, first_period=5, period_mult=3, final_lr=0.001),
                        dict(lr=0.2, first_period=1, period_mult=2)],
    "one_cycle": [dict(max_lr=0.1, total_steps=1000),
                  dict(max_lr=1.0, total_steps=333, pct_start=0.25, div_factor=10.0,
                       final_div_factor=100.0),
                  dict(max_lr=0.5, total_steps=997, pct_start=0.45),
                  dict(max_lr=2.0, total_steps=50, pct_start=0.1, final_div_factor=1e3)],
}


def _graded_mistakes():
    from nnbolts import grading
    return [pytest.param(name, mistake, id=f"{name}: {mistake.name}")
            for name in _GRADED_CONFIGS for mistake in grading.known_mistakes(getattr(S, name))]


@pytest.mark.parametrize("name, mistake", _graded_mistakes())
def test_graded_schedule_mistakes_are_named(name, mistake):
    """Every catalogued mistake of the new 05 schedules fails the hidden test's check and is
    named in its message, and the catalogue holds at least three per schedule."""
    from nnbolts import grading
    factory = getattr(S, name)
    assert len(grading.known_mistakes(factory)) >= 3

    def student(**config):
        return mistake.fn(**dict(factory(**config)._items()))

    grading.check_schedule(factory, factory, steps=1000, configs=_GRADED_CONFIGS[name])
    with pytest.raises(AssertionError) as failure:
        grading.check_schedule(student, factory, steps=1000, configs=_GRADED_CONFIGS[name],
                               name=name)
    assert f"This looks like: {mistake.name}" in str(failure.value), str(failure.value)


def _blobs(seed):
    """The hidden test's recipe (solutions/05-schedules, test_range_test)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], dtype=torch.float64)
    y = torch.arange(64) % 3
    X = centres[y] + torch.randn(64, 2, generator=g, dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0, momentum=0.9)
    return (net, optimizer, torch.nn.functional.cross_entropy,
            [(X[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)])


_RANGE_SETTINGS = [(1e-3, 100.0, 60, 0.8), (1e-2, 30.0, 40, 0.9), (1e-4, 10.0, 25, 0.5)]


def _check_range_test(student):
    from functools import partial

    from nnbolts import grading

    def problem(case):
        lr_min, lr_max, steps, beta = _RANGE_SETTINGS[case.index % len(_RANGE_SETTINGS)]
        return grading.Call(lr_min, lr_max, steps, seed=case.randint(0, 2**31), beta=beta)

    grading.check_function(
        lambda *a, **k: student(_blobs, *a, **k), partial(S.range_test, _blobs), problem,
        name="range_test", n_cases=len(_RANGE_SETTINGS), rtol=1e-5, atol=1e-8,
        mistakes=[grading.Mistake(m.name, m.hint, partial(m.fn, _blobs))
                  for m in grading.known_mistakes(S.range_test)])


def _incremental_range_test(recipe, lr_min, lr_max, steps, *, seed=0, beta=0.8):
    """An honest variant: the rate multiplied by a constant factor at every step (a last rate
    off lr_max by rounding), numpy for the smoothing."""
    model, optimizer, loss_fn, batches = recipe(seed)
    factor, lr, losses, lrs = (lr_max / lr_min) ** (1 / (steps - 1)), lr_min, [], []
    for t in range(steps):
        optimizer.param_groups[0]["lr"] = lr
        inputs, targets = batches[t % len(batches)]
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        lrs.append(lr)
        lr *= factor
    weights = beta ** np.arange(steps)[::-1]
    smoothed = [float((1 - beta) * np.dot(weights[steps - t - 1:], losses[:t + 1])
                      / (1 - beta ** (t + 1))) for t in range(steps)]
    return lrs, smoothed


def test_range_test_grading_accepts_the_reference_and_an_honest_variant():
    _check_range_test(S.range_test)
    _check_range_test(_incremental_range_test)


def _range_mistakes():
    from nnbolts import grading
    return [pytest.param(m, id=m.name) for m in grading.known_mistakes(S.range_test)]


@pytest.mark.parametrize("mistake", _range_mistakes())
def test_range_test_mistakes_are_named(mistake):
    with pytest.raises(AssertionError) as failure:
        _check_range_test(mistake.fn)
    assert f"This looks like: {mistake.name}" in str(failure.value), str(failure.value)
