"""nnbolts.explore.landscapes: the grids behind the ``optimizers`` and ``quartic`` explorers
against direct nnbolts runs, their bad inputs, and the controls of their charts."""

import json
import math

import pytest
import torch

from nnbolts import optim, schedules
from nnbolts.explore import landscapes as ex
from nnbolts.landscapes import QUARTIC_GLOBAL_MIN, QUARTIC_LOCAL_MIN, descend, get_landscape

# the optimizer classes that share each rule's pure step, with its second hyper-parameter
CLASSES = {
    "sgd": (optim.SGD, lambda h: {}),
    "momentum": (optim.SGD, lambda h: {"momentum": h}),
    "nesterov": (optim.SGD, lambda h: {"momentum": h, "nesterov": True}),
    "adagrad": (optim.Adagrad, lambda h: {}),
    "rmsprop": (optim.RMSprop, lambda h: {"alpha": h}),
    "adam": (optim.Adam, lambda h: {"betas": (h, 0.999)}),
}


@pytest.fixture(scope="module")
def small_grids():
    """Two landscapes, two rates, two starts, 25 steps: every rule and value."""
    return {
        "rosenbrock": ex.optimizer_grid("rosenbrock", log_lrs=(-3.0, -1.0),
                                        starts=((-1.5, 2.5), (1.5, 0.5)), steps=25),
        "saddle": ex.optimizer_grid("saddle", log_lrs=(-3.0, -1.0),
                                    starts=((-1.5, 0.01), (-1.5, 0.0)), steps=25),
    }


def assert_same_run(grid_xs, run):
    """The grid's points equal the direct run's, step for step, as long as the grid records
    them; a run that left the box is NaN in the grid after its first point outside."""
    recorded = ~torch.isnan(grid_xs).any(-1)
    n = int(recorded.sum())
    assert bool(recorded[:n].all()) and not bool(recorded[n:].any())  # NaN only at the end
    assert n <= run.xs.shape[0]
    torch.testing.assert_close(grid_xs[:n], run.xs[:n], rtol=0, atol=0)
    if n < grid_xs.shape[0]:  # stopped early: the run left the box (or diverged) there
        box = torch.tensor(get_landscape(run.landscape).bounds, dtype=torch.float64)
        width = box[:, 1] - box[:, 0]
        last = run.xs[n - 1]
        outside = (last < box[:, 0] - width / 2) | (last > box[:, 1] + width / 2)
        assert bool(outside.any()) or run.diverged


@pytest.mark.parametrize("landscape", ["rosenbrock", "saddle"])
def test_optimizer_grid_matches_descend_for_every_cell(small_grids, landscape):
    # Same pure step, same learning rate, same float64 operations: equal, not merely close.
    grid = small_grids[landscape]
    assert grid.xs.shape == (len(grid.combos), 2, 2, 26, 2)
    assert grid.losses.shape == (len(grid.combos), 2, 2, 26)
    for rule, value in grid.combos:
        cls, hyper = CLASSES[rule]
        for log_lr in grid.log_lrs:
            for s, x0 in enumerate(grid.starts):
                run = descend(landscape, cls, x0, grid.steps, lr=10.0**log_lr, **hyper(value))
                xs, losses = grid.run(rule, value, log_lr, s)
                assert_same_run(xs, run)
                finite = ~torch.isnan(losses)
                torch.testing.assert_close(losses[finite], run.losses[: int(finite.sum())],
                                           rtol=0, atol=0)


def test_optimizer_grid_matches_a_pure_step_loop():
    # One cell by hand with the public pure step, as a student would write it.
    grid = ex.optimizer_grid("beale", rules=("adam",), log_lrs=(-1.0,), steps=15)
    beale = get_landscape("beale")
    x = torch.tensor(grid.starts[2], dtype=torch.float64)
    state = optim.adam_init(x)
    points = [x]
    for _ in range(grid.steps):
        x, state = optim.adam_step(x, beale.gradient(x), state, lr=0.1, betas=(0.99, 0.999))
        points.append(x)
    torch.testing.assert_close(grid.run("adam", 0.99, -1.0, 2)[0], torch.stack(points),
                               rtol=0, atol=0)


def test_optimizer_grid_shows_what_the_chapter_says(small_grids):
    saddle = small_grids["saddle"]
    # started exactly on the x axis, gradient descent converges to the saddle point
    on_axis, _ = saddle.run("sgd", None, -1.0, 1)
    assert on_axis[-1, 1] == 0 and abs(on_axis[-1, 0]) < abs(on_axis[0, 0])
    # a large SGD rate on Rosenbrock leaves the box: recorded as NaN afterwards
    rosen = ex.optimizer_grid("rosenbrock", rules=("sgd",), log_lrs=(0.0,), steps=10)
    xs, losses = rosen.run("sgd", None, 0.0, 0)
    assert torch.isnan(xs[-1]).all() and torch.isnan(losses[-1])


def test_default_grids_cover_the_explorer():
    assert set(ex.EXPLORER_LANDSCAPES) == {"rosenbrock", "beale", "ill_conditioned", "saddle"}
    assert [r.label for r in ex.RULES.values()] == [
        "SGD", "momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam"]
    assert ex.LOG_LR_GRID[0] == -4.0 and ex.LOG_LR_GRID[-1] == 0.0
    for starts, steps, stride in ex.EXPLORER_LANDSCAPES.values():
        assert len(starts) == 3 and steps >= 50 and stride % 2 == 1  # odd: no aliased zig-zag


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"landscape": "himmelblau"}, ValueError, "landscape"),
        ({"landscape": "rosenbrock", "rules": ("sgd", "lbfgs")}, ValueError, "rule"),
        ({"landscape": "rosenbrock", "rules": "sgd"}, TypeError, "rules"),
        ({"landscape": "rosenbrock", "log_lrs": ()}, TypeError, "log_lrs"),
        ({"landscape": "rosenbrock", "log_lrs": (float("nan"),)}, ValueError, "log_lrs"),
        ({"landscape": "rosenbrock", "starts": ((1.0,),)}, ValueError, "starts"),
        ({"landscape": "rosenbrock", "steps": 0}, ValueError, "steps"),
        ({"landscape": "rosenbrock", "steps": 2.5}, TypeError, "steps"),
    ],
)
def test_optimizer_grid_bad_inputs(kwargs, error, match):
    landscape = kwargs.pop("landscape")
    with pytest.raises(error, match=match):
        ex.optimizer_grid(landscape, **kwargs)


def bindings(spec: dict) -> dict:
    """name -> input kind of every bound parameter of a Vega-Lite spec."""
    out = {}
    for param in spec.get("params", []):
        bind = param.get("bind")
        if bind:
            out[param["name"]] = bind["input"]
            assert bind.get("name", "").strip(), f"{param['name']} has no text label"
    return out


def test_optimizers_chart_has_the_controls(small_grids):
    chart = ex.optimizers_chart(list(small_grids.values()), resolution=8)
    spec = chart.to_dict()
    kinds = bindings(spec)
    assert kinds["landscape"] == "select" and kinds["start"] == "radio"
    for key, rule in ex.RULES.items():
        assert kinds[f"show_{key}"] == "checkbox" and kinds[f"lr_{key}"] == "range"
        if rule.values:
            assert kinds[f"h_{key}"] == "select"
    assert set(spec["datasets"]) == {"optimizer_runs", "optimizer_contours", "optimizer_marks"}
    rows = spec["datasets"]["optimizer_runs"]
    assert len(rows) == sum(g.xs.shape[0] * g.xs.shape[1] * g.xs.shape[2]
                            for g in small_grids.values())
    text = json.dumps(spec)
    assert "Loss against steps" in text and "Paths on the landscape" in text
    with pytest.raises(ValueError, match="shown rule"):
        ex.optimizers_chart(list(small_grids.values()), shown=("sgd", "lion"))
    with pytest.raises(ValueError, match="grids"):
        ex.optimizers_chart([])


def test_optimizers_data_rounds_and_stays_in_budget():
    grids = [ex.optimizer_grid(name) for name in ex.EXPLORER_LANDSCAPES]
    data = ex.optimizers_data(grids)
    size = len(json.dumps(data, separators=(",", ":")))
    assert size < 1.8e6, size  # the page's budget for an explorer's own markup is 2 MB
    for row in data["runs"][:200]:
        assert len(row["x"]) == len(row["y"]) and len(row["f"]) <= len(row["x"])
        for v in row["x"] + row["f"]:
            assert v is None or v == float(f"{v:.3e}")  # 4 significant digits
    assert ex._round(1234567.0) == 1235000.0 and ex._round(float("inf")) is None


# --- the quartic ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_quartic():
    return ex.quartic_grid(log_lrs=(-1.0, -0.2), momenta=(0.0, 0.9), decays=(1.0, 0.9),
                           starts=(-5.0, 3.5), steps=40)


def test_quartic_grid_matches_descend(small_quartic):
    grid = small_quartic
    assert grid.xs.shape == (2, 2, 2, 2, 41)
    for mu in grid.momenta:
        for gamma in grid.decays:
            for log_lr in grid.log_lrs:
                for x0 in grid.starts:
                    eta0 = 10.0**log_lr
                    schedule = (None if gamma == 1.0
                                else schedules.exponential(eta0 * gamma, gamma))
                    run = descend("quartic", optim.SGD, [x0], grid.steps, lr=eta0, momentum=mu,
                                  schedule=schedule)
                    xs, losses = grid.run(mu, gamma, log_lr, x0)
                    assert_same_run(xs.unsqueeze(-1), run)
                    finite = ~torch.isnan(losses)
                    torch.testing.assert_close(losses[finite], run.losses[: int(finite.sum())],
                                               rtol=0, atol=0)


def test_quartic_grid_oscillates_above_two_over_curvature():
    # The chapter's prose: above 2/f''(x*) ≈ 0.578 the iterates bounce around x* for ever;
    # below it they settle. 10^-0.2 = 0.631 and 10^-0.3 = 0.501 are on the explorer's grid.
    grid = ex.quartic_grid(log_lrs=(-0.3, -0.2), momenta=(0.0,), decays=(1.0,),
                           starts=(3.5,), steps=100)
    settled, _ = grid.run(0.0, 1.0, -0.3, 3.5)
    bouncing, _ = grid.run(0.0, 1.0, -0.2, 3.5)
    assert abs(settled[-1] - QUARTIC_GLOBAL_MIN) < 1e-6
    assert abs(bouncing[-1] - bouncing[-3]) < 1e-6 < abs(bouncing[-1] - QUARTIC_GLOBAL_MIN)
    assert (bouncing[-1] - QUARTIC_GLOBAL_MIN) * (bouncing[-2] - QUARTIC_GLOBAL_MIN) < 0
    curvature = torch.autograd.functional.hessian(
        lambda x: get_landscape("quartic")(x), torch.tensor([QUARTIC_GLOBAL_MIN],
                                                            dtype=torch.float64)).item()
    assert 10**-0.3 < 2 / curvature < 10**-0.2
    assert min(ex.QUARTIC_LOG_LRS) < math.log10(2 / curvature) < max(ex.QUARTIC_LOG_LRS)


def test_quartic_grid_momentum_crosses_the_hump(small_quartic):
    plain, _ = small_quartic.run(0.0, 1.0, -1.0, -5.0)
    heavy = ex.quartic_grid(log_lrs=(-1.0,), momenta=(0.9,), decays=(1.0,), starts=(-5.0,),
                            steps=100).run(0.9, 1.0, -1.0, -5.0)[0]
    assert abs(plain[-1] - QUARTIC_LOCAL_MIN) < 1e-3 and heavy[-1] > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"momenta": (1.0,)}, ValueError, "momenta"),
        ({"momenta": ()}, TypeError, "momenta"),
        ({"decays": (0.0,)}, ValueError, "decays"),
        ({"decays": (1.5,)}, ValueError, "decays"),
        ({"starts": ((1.0, 2.0),)}, ValueError, "starts"),
        ({"log_lrs": "abc"}, TypeError, "log_lrs"),
        ({"steps": -1}, ValueError, "steps"),
    ],
)
def test_quartic_grid_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        ex.quartic_grid(**kwargs)


def test_quartic_grid_run_rejects_values_off_the_grid(small_quartic):
    with pytest.raises(ValueError, match="log_lr"):
        small_quartic.run(0.0, 1.0, -0.5, 3.5)


def test_quartic_chart_has_the_controls(small_quartic):
    spec = ex.quartic_chart(small_quartic, resolution=11).to_dict()
    kinds = bindings(spec)
    assert kinds == {"log_lr": "range", "momentum": "radio", "decay": "radio", "start": "select"}
    assert set(spec["datasets"]) == {"quartic_runs", "quartic_curve"}
    assert len(spec["datasets"]["quartic_runs"]) == 16


def test_quartic_data_stays_in_budget():
    data = ex.quartic_data(ex.quartic_grid())
    assert len(json.dumps(data, separators=(",", ":"))) < 1.8e6


def test_specs_equal_the_charts(small_grids, small_quartic):
    # the fast path (validate without the data, then add it) gives the chart's own spec
    grids = list(small_grids.values())
    assert ex.optimizers_spec(grids, resolution=8) == ex.optimizers_chart(
        grids, resolution=8).to_dict()
    assert ex.quartic_spec(small_quartic, resolution=11) == ex.quartic_chart(
        small_quartic, resolution=11).to_dict()
