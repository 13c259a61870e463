"""nnbolts.landscapes: the known minima, and descend() against the course's numbers."""

import math

import numpy as np
import pytest
import torch

import nnbolts.optim
from nnbolts.landscapes import (
    LANDSCAPES,
    QUARTIC_GLOBAL_MIN,
    QUARTIC_LOCAL_MAX,
    QUARTIC_LOCAL_MIN,
    Landscape,
    Trajectory,
    descend,
    get_landscape,
    quadratic,
    rosenbrock,
)

WITH_MINIMA = [name for name, scape in LANDSCAPES.items() if scape.minima]
QUARTIC = (319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840, 6.0)


def hessian(scape: Landscape, point) -> torch.Tensor:
    x = torch.tensor(point, dtype=torch.float64)
    return torch.autograd.functional.hessian(lambda p: scape(p), x)


def test_registry_has_the_books_landscapes():
    assert set(LANDSCAPES) == {
        "quartic", "rosenbrock", "beale", "himmelblau", "saddle", "monkey_saddle",
        "ill_conditioned",
    }
    assert get_landscape("beale") is LANDSCAPES["beale"]
    for name, scape in LANDSCAPES.items():
        assert scape.name == name and scape.dim in (1, 2) and len(scape.bounds) == scape.dim
        assert scape.start is not None and len(scape.start) == scape.dim


@pytest.mark.parametrize("name", WITH_MINIMA)
def test_minima_are_stationary_with_the_stated_value(name):
    scape = LANDSCAPES[name]
    for point in scape.minima:
        x = torch.tensor(point, dtype=torch.float64)
        assert float(scape(x)) == pytest.approx(scape.min_value, abs=1e-12)
        assert float(scape.gradient(x).abs().max()) < 1e-9
        assert torch.linalg.eigvalsh(hessian(scape, point)).min() > 0  # a strict minimum
    for point in scape.local_minima:
        x = torch.tensor(point, dtype=torch.float64)
        assert float(scape(x)) > scape.min_value
        assert float(scape.gradient(x).abs().max()) < 1e-9
        assert torch.linalg.eigvalsh(hessian(scape, point)).min() > 0


@pytest.mark.parametrize("name", WITH_MINIMA)
def test_no_grid_point_is_below_the_minimum(name):
    scape = LANDSCAPES[name]
    *_, values = scape.grid(101)
    assert float(values.min()) >= scape.min_value - 1e-12


def test_quartic_minima_against_the_cubic_roots():
    # Independent check: numpy's roots of f'(x) = 4a4 x^3 + 3a3 x^2 + 2a2 x + a1.
    a4, a3, a2, a1, _ = QUARTIC
    roots = sorted(np.roots([4 * a4, 3 * a3, 2 * a2, a1]).real)
    assert roots == pytest.approx([QUARTIC_LOCAL_MIN, QUARTIC_LOCAL_MAX, QUARTIC_GLOBAL_MIN],
                                  abs=1e-12)
    scape = get_landscape("quartic")
    curvature = [float(hessian(scape, (r,))[0, 0]) for r in roots]
    assert curvature[0] > 0 and curvature[1] < 0 and curvature[2] > 0
    f = [float(scape(torch.tensor([r], dtype=torch.float64))) for r in roots]
    assert f[2] < f[0]  # 3.27 is the global minimum, -3.25 only a local one
    assert f[2] == pytest.approx(0.8812471800601579, rel=1e-14)
    assert round(QUARTIC_GLOBAL_MIN, 2) == 3.27 and round(QUARTIC_LOCAL_MIN, 2) == -3.25


def test_quartic_is_the_courses_polynomial(dtype):
    x = torch.linspace(-6, 6, 25, dtype=dtype)
    a4, a3, a2, a1, a0 = QUARTIC
    expected = a4 * x**4 + a3 * x**3 + a2 * x**2 + a1 * x + a0
    torch.testing.assert_close(get_landscape("quartic")(x.unsqueeze(-1)), expected)


def test_himmelblau_has_four_minima():
    assert len(get_landscape("himmelblau").minima) == 4


def test_saddles_have_no_minimum():
    for name in ("saddle", "monkey_saddle"):
        scape = LANDSCAPES[name]
        assert scape.minima == () and scape.min_value is None
        (point,) = scape.saddle_points
        assert float(scape.gradient(torch.tensor(point, dtype=torch.float64)).abs().max()) == 0
    eig = torch.linalg.eigvalsh(hessian(LANDSCAPES["saddle"], (0.0, 0.0)))
    assert eig.min() < 0 < eig.max()  # indefinite: a saddle, not an extremum
    assert torch.all(hessian(LANDSCAPES["monkey_saddle"], (0.0, 0.0)) == 0)


@pytest.mark.parametrize("condition", [1.0, 10.0, 250.0])
@pytest.mark.parametrize("angle", [0.0, 0.6])
def test_quadratic_condition_number(condition, angle):
    scape = quadratic(condition, angle)
    eig = torch.linalg.eigvalsh(hessian(scape, (0.3, -0.2)))
    assert float(eig.max() / eig.min()) == pytest.approx(condition, rel=1e-10)
    assert float(scape(torch.zeros(2, dtype=torch.float64))) == 0.0


def test_rosenbrock_parameters():
    scape = rosenbrock(a=2.0, b=10.0)
    assert scape.minima == ((2.0, 4.0),)
    assert float(scape(torch.tensor([2.0, 4.0]))) == 0.0


@pytest.mark.parametrize("name", sorted(LANDSCAPES))
def test_batched_evaluation_on_device(name, device, dtype):
    scape = LANDSCAPES[name]
    points = torch.randn(4, 3, scape.dim, generator=torch.Generator().manual_seed(0),
                         dtype=dtype).to(device)
    values = scape(points)
    assert values.shape == (4, 3) and values.dtype == dtype and values.device == points.device
    one_by_one = torch.stack([scape(points[i, j]) for i in range(4) for j in range(3)])
    torch.testing.assert_close(values.reshape(-1), one_by_one)
    grad = scape.gradient(points)
    assert grad.shape == points.shape and grad.device == points.device


def test_grid_shapes():
    x, fx = get_landscape("quartic").grid(50)
    assert x.shape == fx.shape == (50,)
    gx, gy, gz = get_landscape("beale").grid(30)
    assert gx.shape == gy.shape == gz.shape == (30, 30)
    assert float(gx[0, 0]) == -4.5 and float(gx[0, -1]) == 4.5 and float(gy[-1, 0]) == 4.5


# --- descend -----------------------------------------------------------------------------


def test_quartic_sgd_lands_where_it_starts():
    """The lesson of book/gradient_descent.md: x0 = 5 finds the global minimum, x0 = -5 the
    local one (course values after 100 steps of lr 0.1)."""
    right = descend("quartic", torch.optim.SGD, [5.0], 100, lr=0.1)
    left = descend("quartic", torch.optim.SGD, [-5.0], 100, lr=0.1)
    assert float(right.final[0]) == pytest.approx(QUARTIC_GLOBAL_MIN, abs=1e-9)
    assert float(left.final[0]) == pytest.approx(QUARTIC_LOCAL_MIN, abs=1e-9)


def test_quartic_momentum_escapes_the_local_minimum():
    """Momentum 0.9 from -5 crosses the hump at -0.22. After 100 steps it is still settling
    (3.2677, the course's printed value); given more steps it converges to 3.2728."""
    run = descend("quartic", torch.optim.SGD, [-5.0], 100, lr=0.1, momentum=0.9)
    assert float(run.final[0]) == pytest.approx(3.267681061691328, abs=1e-9)
    assert bool((run.xs[:, 0] > QUARTIC_LOCAL_MAX).any())
    longer = descend("quartic", torch.optim.SGD, [-5.0], 400, lr=0.1, momentum=0.9)
    assert float(longer.final[0]) == pytest.approx(QUARTIC_GLOBAL_MIN, abs=1e-6)
    little = descend("quartic", torch.optim.SGD, [-5.0], 100, lr=0.1, momentum=0.1)
    assert float(little.final[0]) == pytest.approx(QUARTIC_LOCAL_MIN, abs=1e-9)


def test_torch_momentum_is_the_courses_momentum():
    """The course writes v <- mu v - alpha f'(x); x <- x + v. torch.optim.SGD keeps
    b <- mu b + f'(x); x <- x - alpha b, the same iterates with v = -alpha b."""
    a4, a3, a2, a1, _ = QUARTIC
    x, v, path = -5.0, 0.0, [-5.0]
    for _ in range(60):
        v = 0.9 * v - 0.1 * (4 * a4 * x**3 + 3 * a3 * x**2 + 2 * a2 * x + a1)
        x += v
        path.append(x)
    run = descend("quartic", torch.optim.SGD, [-5.0], 60, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(run.xs[:, 0].numpy(), path, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("optimizer", "kwargs"),
    [
        (torch.optim.Adam, {"lr": 0.05}),
        (torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
        (torch.optim.RMSprop, {"lr": 0.01}),
        (torch.optim.Adagrad, {"lr": 0.5}),
    ],
)
def test_optimizers_make_progress_on_rosenbrock(optimizer, kwargs):
    run = descend("rosenbrock", optimizer, steps=300, **kwargs)
    target = torch.ones(2, dtype=torch.float64)
    assert float(run.final_loss) < 0.5 * float(run.losses[0])
    assert float((run.final - target).norm()) < float((run.xs[0] - target).norm())
    assert not run.diverged and run.optimizer == optimizer.__name__


def test_adam_gets_close_to_rosenbrocks_minimum():
    run = descend("rosenbrock", torch.optim.Adam, steps=1000, lr=0.1)
    assert float((run.final - 1).abs().max()) < 0.01
    assert float(run.final_loss) < 1e-5


def test_trajectory_shapes_and_values(device, dtype):
    run = descend("beale", torch.optim.SGD, [1.0, 1.5], 25, lr=1e-3, dtype=dtype, device=device)
    assert isinstance(run, Trajectory) and run.steps == 25
    assert run.xs.shape == (26, 2) and run.losses.shape == (26,) and run.lrs.shape == (25,)
    for t in (run.xs, run.losses, run.lrs):
        assert t.dtype == dtype and t.device.type == device.type
    torch.testing.assert_close(run.losses, get_landscape("beale")(run.xs))
    assert run.xs[0].tolist() == [1.0, 1.5]
    torch.testing.assert_close(run.final, run.xs[-1])
    assert torch.all(run.lrs == 1e-3)


def test_tensor_start_keeps_its_dtype_and_device(device):
    x0 = torch.tensor([-1.0, 1.0], dtype=torch.float32, device=device)
    run = descend("himmelblau", torch.optim.Adam, x0, 5, lr=0.1)
    assert run.xs.dtype == torch.float32 and run.xs.device == x0.device
    assert x0.tolist() == [-1.0, 1.0]  # the start is copied, not optimised in place


def test_default_start_and_zero_steps():
    run = descend("saddle", torch.optim.SGD, steps=0, lr=0.1)
    assert run.xs.shape == (1, 2) and run.lrs.shape == (0,)
    assert tuple(run.xs[0].tolist()) == get_landscape("saddle").start


def test_step_schedule_sets_the_lr_before_each_step():
    run = descend("ill_conditioned", torch.optim.SGD, steps=6, schedule=lambda t: 0.1 / (1 + t),
                  lr=1.0)
    assert run.lrs.tolist() == pytest.approx([0.1 / (1 + t) for t in range(6)])
    # the first update used schedule(0), not the constructor's lr=1.0
    x0, x1 = run.xs[0], run.xs[1]
    g = get_landscape("ill_conditioned").gradient(x0)
    torch.testing.assert_close(x1, x0 - 0.1 * g)


def test_lr_scheduler_factory():
    def step_decay(optimizer):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    run = descend("quartic", torch.optim.SGD, [5.0], 6, lr=0.08, schedule=step_decay)
    assert run.lrs.tolist() == pytest.approx([0.08, 0.08, 0.04, 0.04, 0.02, 0.02])


def test_optimizer_given_as_a_callable():
    a = descend("beale", lambda params: torch.optim.Adam(params, lr=0.01), steps=20)
    b = descend("beale", torch.optim.Adam, steps=20, lr=0.01)
    torch.testing.assert_close(a.xs, b.xs)


def test_lbfgs_gets_its_closure():
    run = descend("rosenbrock", torch.optim.LBFGS, steps=10, lr=1.0,
                  line_search_fn="strong_wolfe")
    assert float(run.final_loss) < 1e-8


def test_divergence_stops_and_is_marked():
    run = descend("quartic", torch.optim.SGD, [5.0], 100, lr=3.0)
    assert run.diverged and run.steps < 100
    assert not math.isfinite(float(run.final_loss)) or not bool(torch.isfinite(run.final).all())
    assert bool(torch.isfinite(run.losses[:-1]).all())
    assert run.lrs.shape == (run.steps,)
    with pytest.raises(FloatingPointError, match="diverged on the quartic landscape"):
        descend("quartic", torch.optim.SGD, [5.0], 100, lr=3.0, on_divergence="raise")


def test_bad_arguments():
    with pytest.raises(ValueError, match="Invalid landscape"):
        get_landscape("banana")
    with pytest.raises(TypeError, match="Landscape or its name"):
        descend(42, torch.optim.SGD, lr=0.1)
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass"):
        descend("beale", dict, lr=0.1)
    with pytest.raises(TypeError, match="only accepted with an optimizer class"):
        descend("beale", lambda p: torch.optim.SGD(p, lr=0.1), lr=0.1)
    with pytest.raises(TypeError, match="must return a torch.optim.Optimizer"):
        descend("beale", lambda p: None)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        descend("beale", torch.optim.SGD, [1.0], lr=0.1)
    with pytest.raises(ValueError, match="Invalid steps"):
        descend("beale", torch.optim.SGD, steps=-1, lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        descend("beale", torch.optim.SGD, lr=-0.1)
    with pytest.raises(TypeError, match="schedule"):
        descend("beale", torch.optim.SGD, steps=3, lr=0.1, schedule=lambda t: "fast")
    with pytest.raises(ValueError, match="Invalid on_divergence"):
        descend("beale", torch.optim.SGD, lr=0.1, on_divergence="ignore")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        get_landscape("beale")(torch.ones(3))
    with pytest.raises(TypeError, match="floating"):
        get_landscape("beale")(torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="Invalid b"):
        rosenbrock(b=0.0)
    with pytest.raises(ValueError, match="Invalid condition number"):
        quadratic(0.5)


def test_with_nnbolts_optimizer_and_schedule():
    from nnbolts import optim, schedules

    ours = descend("quartic", optim.SGD, [-5.0], 100, lr=0.1, momentum=0.9)
    theirs = descend("quartic", torch.optim.SGD, [-5.0], 100, lr=0.1, momentum=0.9)
    torch.testing.assert_close(ours.xs, theirs.xs)
    run = descend("quartic", torch.optim.SGD, [5.0], 4, lr=1.0,
                  schedule=schedules.exponential(0.1, 0.5))
    assert run.lrs.tolist() == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_descend_gives_any_closure_optimizer_its_closure():
    # nnbolts' LBFGS is not a subclass of torch's: the closure is read from step's signature.
    runs = [descend("rosenbrock", cls, [-1.0, 1.0], 5, lr=1, line_search_fn="strong_wolfe")
            for cls in (torch.optim.LBFGS, nnbolts.optim.LBFGS)]
    assert runs[0].losses[-1] < 1e-8  # Rosenbrock's valley crossed in two outer steps
    assert torch.equal(runs[0].xs, runs[1].xs)


def test_descend_runs_a_schedule_free_optimizer_in_train_mode():
    run = descend("ill_conditioned", nnbolts.optim.ScheduleFreeAdamW, [1.0, 1.0], 50, lr=0.1)
    assert not run.diverged and run.losses[-1] < run.losses[0]
