"""The initialization explorer's grid (nnbolts.explore.init) against direct nnbolts runs.

A small grid is computed once; sampled cells are rebuilt one network at a time with the public
API (``models.mlp`` with the scheme's ``init``, ``optim.SGD``, autograd) and must agree: the
histograms at initialization bin for bin (up to a value landing on the other side of a bin edge
through rounding), the loss of every step and the trained network's probabilities to float32
rounding of a batched against an unbatched computation.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from nnbolts import models, optim, seeds
from nnbolts.explore import init as E

SCHEMES = ("zero", "too small N(0, 0.01²)", "Glorot/Xavier", "He", "too large N(0, 3²)",
           "sigmoid ×4 (Glorot × 4)")
ACTS = ("sigmoid", "tanh", "relu")
DEPTHS = (1, 3)
STEPS = 25
REPLICAS = 2


@pytest.fixture(scope="module")
def grid():
    return E.init_grid(SCHEMES, ACTS, DEPTHS, seed=0, replicas=REPLICAS, steps=STEPS)


def direct_run(scheme, activation, depth, replica, steps=STEPS):
    """One network of the grid, trained alone with the public API: histograms at init, the loss
    of every step and the probabilities at the boundary points after training."""
    X, t = E.moons(replica)
    sizes = [2] + [E.WIDTH] * depth + [1]
    net = models.mlp(sizes, activation, E.SCHEMES[scheme], generator=seeds.generator(replica + 1))
    # at initialization: every hidden layer's output and dL/d(output)
    outputs = []

    def keep(_module, _inputs, out):
        out.retain_grad()
        outputs.append(out)

    hooks = [m.register_forward_hook(keep) for m in net if isinstance(m, models.Activation)]
    F.binary_cross_entropy_with_logits(net(X), t).backward()
    for h in hooks:
        h.remove()
    edges = E.activation_edges(activation)
    act_hist = torch.stack([E.histogram(a.detach().flatten(), edges) for a in outputs])
    grad_hist = torch.stack([E.histogram(a.grad.flatten().abs().log10(), E.GRAD_EDGES)
                             for a in outputs])
    opt = optim.SGD(net.parameters(), lr=E.LR, momentum=E.MOMENTUM)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(X), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(F.binary_cross_entropy_with_logits(net(X), t).item())
        prob = torch.sigmoid(net(E.boundary_points()))[:, 0]
    return act_hist, grad_hist, torch.tensor(losses), prob


SAMPLED = [
    ("He", "relu", 3, 0),
    ("Glorot/Xavier", "tanh", 3, 1),
    ("sigmoid ×4 (Glorot × 4)", "sigmoid", 1, 1),
    ("too small N(0, 0.01²)", "tanh", 3, 0),
    ("zero", "sigmoid", 1, 0),
    ("too large N(0, 3²)", "tanh", 1, 1),
]


@pytest.mark.parametrize(("scheme", "activation", "depth", "replica"), SAMPLED)
def test_cells_match_direct_runs(grid, scheme, activation, depth, replica):
    key = (scheme, activation, depth)
    act_hist, grad_hist, losses, prob = direct_run(scheme, activation, depth, replica)
    got_act, got_grad = grid.act_hist[key][replica], grid.grad_hist[key][replica]
    assert got_act.shape == act_hist.shape == (depth, E.HIST_BINS)
    assert got_grad.shape == grad_hist.shape == (depth, len(E.GRAD_EDGES) - 1)
    # every entry counted once; at most a few move across a bin edge through rounding
    assert (got_act.sum(1) == E.N_SAMPLES * E.WIDTH).all()
    assert (got_grad.sum(1) == E.N_SAMPLES * E.WIDTH).all()
    assert (got_act - act_hist).abs().sum() <= 4
    assert (got_grad - grad_hist).abs().sum() <= 4
    torch.testing.assert_close(grid.loss[key][replica], losses, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grid.prob[key][replica], prob, rtol=0, atol=1e-4)


def test_grid_shapes_and_data(grid):
    assert grid.X.shape == (REPLICAS, E.N_SAMPLES, 2) and grid.t.shape == (REPLICAS, E.N_SAMPLES, 1)
    for r in range(REPLICAS):
        X, t = E.moons(r)
        assert torch.equal(grid.X[r], X) and torch.equal(grid.t[r], t)
    assert len(grid.loss) == len(SCHEMES) * len(ACTS) * len(DEPTHS)
    for (_, _, depth), h in grid.act_hist.items():
        assert h.shape == (REPLICAS, depth, E.HIST_BINS) and h.dtype == torch.int64
    for loss in grid.loss.values():
        assert loss.shape == (REPLICAS, STEPS + 1)
    for prob in grid.prob.values():
        assert prob.shape == (REPLICAS, E.BOUNDARY_RES**2)


def test_zero_init_learns_nothing(grid):
    for act in ACTS:
        for depth in DEPTHS:
            key = ("zero", act, depth)
            assert (grid.loss[key] - math.log(2)).abs().max() < 1e-6
            assert (grid.prob[key] - 0.5).abs().max() < 1e-6
            assert (grid.grad_hist[key][..., 0] == E.N_SAMPLES * E.WIDTH).all()  # all zero


def test_batch_of_one_equals_batch_of_many():
    """The stacking changes nothing: a grid of one cell gives the same numbers."""
    small = E.init_grid(["He"], ["relu"], [3], seed=0, replicas=1, steps=5)
    big = E.init_grid(["zero", "He"], ["tanh", "relu"], [3], seed=0, replicas=1, steps=5)
    key = ("He", "relu", 3)
    torch.testing.assert_close(small.loss[key], big.loss[key], rtol=1e-5, atol=1e-7)
    assert (small.act_hist[key] - big.act_hist[key]).abs().sum() <= 2


def test_histogram_fixed_bins():
    edges = torch.tensor([0.0, 1.0, 2.0, 3.0])
    values = torch.tensor([[-5.0, 0.0, 0.5, 1.0, 2.5, 3.0, 7.0, -math.inf, math.inf, math.nan]])
    counts = E.histogram(values, edges)
    assert counts.tolist() == [[4, 1, 4]]
    assert counts.dtype == torch.int64


def test_boundary_points_layout():
    pts = E.boundary_points()
    res = E.BOUNDARY_RES
    lo, hi = E.BOUNDARY_LIMITS
    assert pts.shape == (res * res, 2)
    assert pts[0].tolist() == [lo, lo] and pts[-1].tolist() == [hi, hi]
    assert pts[1, 0] > pts[0, 0] and pts[1, 1] == pts[0, 1]       # x1 varies fastest
    assert pts[res, 1] > pts[0, 1] and pts[res, 0] == pts[0, 0]


@pytest.mark.parametrize(("kwargs", "error", "word"), [
    ({"schemes": ["bogus"]}, ValueError, "schemes"),
    ({"schemes": "He"}, TypeError, "schemes"),
    ({"schemes": []}, ValueError, "schemes"),
    ({"activations_": ["softmax"]}, ValueError, "activations_"),
    ({"activations_": ["relu", "relu"]}, ValueError, "activations_"),
    ({"depths": [0]}, ValueError, "depths"),
    ({"depths": [17]}, ValueError, "depths"),
    ({"depths": 2}, TypeError, "depths"),
    ({"depths": [2.5]}, TypeError, "depths"),
    ({"replicas": 0}, ValueError, "replicas"),
    ({"steps": -1}, ValueError, "steps"),
    ({"seed": -3}, ValueError, "seed"),
])
def test_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        E.init_grid(**kwargs)


def test_chart_bad_arguments(grid):
    with pytest.raises(TypeError, match="grid"):
        E.init_chart({"not": "a grid"})
    with pytest.raises(ValueError, match="scheme"):
        E.init_chart(grid, scheme="LeCun")          # not in this small grid
    with pytest.raises(ValueError, match="activation"):
        E.init_chart(grid, activation="elu")
    with pytest.raises(ValueError, match="depth"):
        E.init_chart(grid, depth=8)
    with pytest.raises(ValueError, match="replica"):
        E.chart_data(grid, replica=REPLICAS)


def _walk(spec):
    if isinstance(spec, dict):
        yield spec
        for value in spec.values():
            yield from _walk(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _walk(value)


def test_chart_spec_has_the_controls(grid):
    spec = E.init_chart(grid, replica=1).to_dict()
    text = json.dumps(spec, allow_nan=False)        # no NaN or inf reaches the page
    params = {p["name"]: p for p in spec["params"]}
    assert set(params) == {"scheme", "activation", "depth"}
    assert params["scheme"]["bind"]["input"] == "select"
    assert params["scheme"]["bind"]["options"] == list(SCHEMES)
    assert params["activation"]["bind"]["input"] == "radio"
    assert params["activation"]["bind"]["options"] == list(ACTS)
    assert params["depth"]["bind"]["options"] == list(DEPTHS)
    for p in params.values():                       # every control has a text label
        assert p["bind"]["name"].strip()
    assert params["scheme"]["value"] == "He" and params["depth"]["value"] == max(DEPTHS)
    # every panel has a title, every positional axis a title
    titled = [s for s in _walk(spec) if "title" in s and ("mark" in s or "layer" in s)]
    assert len(titled) >= 4
    for enc in (s["encoding"] for s in _walk(spec) if "encoding" in s):
        for channel in ("x", "y"):
            if channel in enc and "field" in enc[channel]:
                assert enc[channel].get("title"), enc[channel]
    # the data are the grid's replica 1, shipped once
    assert set(spec["datasets"]) == {"hist", "loss", "prob", "points"}
    assert len(spec["datasets"]["loss"]) == len(grid.loss)
    first = spec["datasets"]["loss"][0]
    key = (first["scheme"], first["activation"], first["depth"])
    curve = grid.loss[key][1, ::E.LOSS_EVERY]
    assert first["loss"] == pytest.approx(curve.tolist(), rel=1e-3)
    assert len(text) < 200_000


def test_non_finite_values_become_null():
    rows = E._round([1.23456789, math.nan, math.inf, -math.inf, 0.0])
    assert rows == [1.235, None, None, None, 0.0]
