"""nnbolts.explore.schedules: the schedules explorer's grid against direct runs, and its chart.

Sampled runs of a small grid are retrained one at a time as book/schedules.md trains them
(``nnbolts.train.fit`` with ``nnbolts.optim.SGD``, the schedule from ``make_schedule``, the same
seeds): the learning rates must be equal exactly (the same ``nnbolts.schedules`` objects) and
the minibatch losses within a tolerance: the grid's batched matrix products, and its update
θ + η_t (θ' - θ) from sgd_step's θ' = θ - b at rate 1, round differently from ``nn.Linear`` and
θ - η_t b, by about a float32 ulp per step, which training then carries along (and at rate 1,
where training is chaotic, amplifies).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnbolts import models, seeds
from nnbolts.explore import explorer
from nnbolts.explore import schedules as X
from nnbolts.optim import SGD
from nnbolts.train import fit

EPOCHS = 5


@pytest.fixture(scope="module")
def grid():
    return X.schedule_grid(epochs=EPOCHS, kinds=("step", "cosine_restarts", "warmup_cosine",
                                                 "one_cycle", "inverse_time"),
                           settings=(1, 3), peaks=(0.1, 1.0))


def direct(kind, setting, peak, seed=0):
    """One run, as the chapter's ``train`` does it."""
    X_train, y_train = X.digits_split()
    n = -(-len(X_train) // X.BATCH_SIZE)
    schedule, _ = X.make_schedule(kind, setting, peak, epochs=EPOCHS, steps_per_epoch=n)
    net = models.mlp([64, X.HIDDEN, 10], "relu", generator=seeds.generator(seed))
    optimizer = SGD(net.parameters(), lr=peak, momentum=X.MOMENTUM)
    return fit(net, F.cross_entropy, optimizer, (X_train, y_train), epochs=EPOCHS,
               batch_size=X.BATCH_SIZE, schedule=schedule, generator=seeds.generator(100 + seed),
               progress=False)


def test_the_grid_holds_every_choice(grid):
    assert len(grid.runs) == 5 * 2 * 2 + 2 and len(set(grid.runs)) == len(grid.runs)
    assert grid.lr.shape == grid.loss.shape == (len(grid.runs), EPOCHS * grid.steps_per_epoch)
    assert grid.epoch_loss().shape == (len(grid.runs), EPOCHS)
    assert ("constant", 0, 1.0) in grid.runs


@pytest.mark.parametrize("run", [("step", 3, 0.1), ("one_cycle", 1, 1.0),
                                 ("warmup_cosine", 1, 0.1), ("constant", 0, 0.1),
                                 ("cosine_restarts", 3, 1.0)])
def test_sampled_runs_match_direct_training(grid, run):
    history = direct(*run)
    r = grid.index(*run)
    np.testing.assert_array_equal(grid.lr[r], np.array(history.step_lr, dtype=float))
    if run[2] < 1.0:
        np.testing.assert_allclose(grid.loss[r], history.step_loss, rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(grid.epoch_loss()[r], history.epochs["train_loss"], rtol=2e-3)
    else:
        # At rate 1 training is chaotic (losses jump to 6 and back): rounding differences grow
        # by orders of magnitude within an epoch. The first epoch agrees closely, the epochs'
        # means to 10 %.
        first = grid.steps_per_epoch
        np.testing.assert_allclose(grid.loss[r, :first], history.step_loss[:first], rtol=2e-3)
        np.testing.assert_allclose(grid.epoch_loss()[r], history.epochs["train_loss"], rtol=0.1)


def test_runs_are_independent(grid):
    """A run's losses do not depend on the other runs trained beside it."""
    alone = X.schedule_grid(epochs=EPOCHS, kinds=("inverse_time",), settings=(3,), peaks=(1.0,),
                            constant=False)
    np.testing.assert_allclose(alone.loss[0], grid.loss[grid.index("inverse_time", 3, 1.0)],
                               rtol=1e-5, atol=1e-6)


def test_make_schedule_values():
    n, epochs = 10, 12
    s, label = X.make_schedule("step", 2, 0.3, epochs=epochs, steps_per_epoch=n)
    assert s(0) == 0.3 and s(4 * n - 1) == 0.3 and s(4 * n) == pytest.approx(0.06)
    assert "0.2" in label
    s, _ = X.make_schedule("exponential", 2, 0.3, epochs=epochs, steps_per_epoch=n)
    assert s(epochs * n - 1) == pytest.approx(0.003)
    s, _ = X.make_schedule("warmup_cosine", 3, 0.3, epochs=epochs, steps_per_epoch=n)
    assert s(0) == 0 and s(4 * n) == pytest.approx(0.3)
    for kind in X.KINDS:
        for setting in X.SETTINGS:
            s, label = X.make_schedule(kind, setting, 0.3, epochs=epochs, steps_per_epoch=n)
            rates = [s(t) for t in range(epochs * n)]
            assert max(rates) <= 0.3 + 1e-12 and min(rates) >= 0 and label


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"kinds": ("nope",)}, "Invalid kinds"), ({"settings": (4,)}, "Invalid settings"),
     ({"peaks": (0.0,)}, "Invalid peaks"), ({"epochs": 0}, "Invalid epochs"),
     ({"kinds": ()}, "Invalid kinds")],
)
def test_bad_grid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        X.schedule_grid(**kwargs)


def test_bad_schedule_choices():
    with pytest.raises(ValueError, match="Invalid kind"):
        X.make_schedule("cosinus", 1, 0.1, epochs=2, steps_per_epoch=3)
    with pytest.raises(ValueError, match="Invalid setting"):
        X.make_schedule("cosine", 0, 0.1, epochs=2, steps_per_epoch=3)
    with pytest.raises(ValueError, match="Invalid setting"):
        X.make_schedule("constant", 1, 0.1, epochs=2, steps_per_epoch=3)


def test_the_chart_has_the_controls_of_the_issue(grid):
    spec = X.schedule_chart(grid).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert set(params) == {"kind", "setting", "peak"}
    assert params["kind"]["bind"]["input"] == "select"
    assert set(params["kind"]["bind"]["options"]) == {r[0] for r in grid.runs} - {"constant"}
    assert params["setting"]["bind"]["input"] == "range"
    assert params["peak"]["bind"]["input"] == "radio"
    assert params["peak"]["bind"]["options"] == [0.1, 1.0]
    assert all(p["bind"]["name"].strip() for p in params.values())
    rows = spec["datasets"]["runs"]
    assert len(rows) == len(grid.runs)
    row = rows[grid.index("cosine_restarts", 3, 0.1)]
    assert row["loss"] == pytest.approx(grid.epoch_loss()[grid.index("cosine_restarts", 3, 0.1)],
                                        rel=1e-3)
    text = explorer(X.schedule_chart(grid), name="schedules", alt="a").data
    assert len(text.encode()) < 2_000_000


def test_diverged_values_become_null():
    assert X._round([1.23456, float("nan"), float("inf")]) == [1.235, None, None]
    assert torch.isfinite(torch.tensor(0.0))
