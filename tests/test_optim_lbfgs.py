"""LBFGS against torch.optim.LBFGS with closures: fixed steps and the strong-Wolfe line search,
short and long histories, iteration and evaluation budgets, tolerances; the state dict both ways.
L-BFGS is a class only (no pure one-tensor pair; see tests/test_drift.py)."""

import pytest
import torch
import torch.nn.functional as F
from optim_lockstep import clone_params, through_bytes
from optim_oracle import assert_same_trajectory, kwargs_id, make_params, objective, option_grid

from nnbolts.optim import LBFGS

STATE_KEYS = ["H_diag", "al", "d", "func_evals", "n_iter", "old_dirs", "old_stps",
              "prev_flat_grad", "prev_loss", "ro", "t"]


def closure_for(opt, params, k, loss_fn=objective):
    def closure():
        opt.zero_grad()
        loss = loss_fn(params, k)
        loss.backward()
        return loss
    return closure


def run(opt, params, steps, start=0, loss_fn=objective):
    """``steps`` calls of ``opt.step(closure)``, the closure of call k evaluating the oracle's
    objective of step k (so the function changes between calls, as with minibatches)."""
    return [float(opt.step(closure_for(opt, params, k, loss_fn)).detach())
            for k in range(start, start + steps)]


def same_values(a, b, exact, dtype, where):
    """Equal (exact) or close: tensors, lists of tensors, numbers, None."""
    if isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same_values(x, y, exact, dtype, f"{where}[{i}]")
    elif torch.is_tensor(b):
        assert torch.is_tensor(a) and a.device == b.device and a.dtype == b.dtype, where
        if exact:
            assert torch.equal(a, b), where
        else:
            assert_same_trajectory([a.reshape(-1)], [b.reshape(-1)], dtype, where=where)
    elif b is None:
        assert a is None, where
    else:
        assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
        assert a == b if exact else a == pytest.approx(b, rel=1e-5), where


def compare(kwargs, dtype, device, steps=6):
    exact = torch.device(device).type == "cpu"
    p_ours, p_theirs = make_params(dtype, device), make_params(dtype, device)
    ours, theirs = LBFGS(p_ours, **kwargs), torch.optim.LBFGS(p_theirs, **kwargs)
    losses_ours, losses_theirs = run(ours, p_ours, steps), run(theirs, p_theirs, steps)
    where = f"LBFGS({kwargs_id(kwargs)})"
    if exact:
        assert losses_ours == losses_theirs, where
        for i, (a, b) in enumerate(zip(p_ours, p_theirs)):
            assert torch.equal(a, b), f"{where}: tensor {i}"
    else:
        assert_same_trajectory(p_ours, p_theirs, dtype, where=where)
    so, st = ours.state[p_ours[0]], theirs.state[p_theirs[0]]
    assert sorted(so) == sorted(st), f"{where}: state keys {sorted(so)} vs {sorted(st)}"
    for key in st:
        same_values(so[key], st[key], exact, dtype, f"{where}: state[{key!r}]")
    assert list(ours.state) == [p_ours[0]], "the state lives under the first parameter only"
    return ours, theirs


GRID = option_grid(line_search_fn=[None, "strong_wolfe"], history_size=[3, 100],
                   budget=["default", "short"])
BUDGETS = {"default": {}, "short": dict(max_iter=4, max_eval=6)}


@pytest.mark.parametrize("point", GRID, ids=kwargs_id)
def test_lbfgs_matches_torch(point, dtype, device):
    """Six calls of ``step(closure)``, each up to ``max_iter`` iterations: the same losses,
    parameters and state as torch's, bit for bit on the CPU (the same operations in the same
    order, including the line search's Python-float and 0-d tensor arithmetic)."""
    kwargs = dict(lr=0.5, line_search_fn=point["line_search_fn"],
                  history_size=point["history_size"], **BUDGETS[point["budget"]])
    compare(kwargs, dtype, device)


@pytest.mark.parametrize("kwargs", [
    dict(lr=1.0),
    dict(lr=1.0, line_search_fn="strong_wolfe", tolerance_grad=1e-2, tolerance_change=1e-3),
    dict(lr=0.3, tolerance_grad=0.5, tolerance_change=1e-2, history_size=1, max_iter=50),
    dict(lr=1.0, line_search_fn="strong_wolfe", max_iter=30, max_eval=100),
], ids=kwargs_id)
def test_other_hyperparameters_match_torch(kwargs):
    """The default rate, loose tolerances (so each stopping test fires), a history of one pair,
    a generous evaluation budget."""
    compare(kwargs, torch.float64, "cpu")


@pytest.mark.parametrize("kwargs", [dict(lr=0.5, max_iter=5),
                                    dict(lr=1.0, line_search_fn="strong_wolfe", history_size=4,
                                         max_iter=5)], ids=kwargs_id)
def test_state_dict_both_ways(kwargs, dtype, device):
    """Four calls with one library, the state dict (through ``torch.save``) into the other, four
    more: the same as eight calls of torch's."""
    exact = torch.device(device).type == "cpu"
    reference = make_params(dtype, device)
    run(torch.optim.LBFGS(reference, **kwargs), reference, 8)
    for first, second in ((torch.optim.LBFGS, LBFGS), (LBFGS, torch.optim.LBFGS)):
        params = make_params(dtype, device)
        opt = first(params, **kwargs)
        run(opt, params, 4)
        fresh = second(params, **kwargs)
        fresh.load_state_dict(through_bytes(opt.state_dict()))
        assert sorted(fresh.state[params[0]]) == STATE_KEYS
        run(fresh, params, 4, start=4)
        where = f"{first.__module__}.{first.__name__} -> {second.__name__}"
        if exact:
            for i, (a, b) in enumerate(zip(params, reference)):
                assert torch.equal(a, b), f"{where}: tensor {i}"
        else:
            assert_same_trajectory(params, reference, dtype, where=where)


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _steep(x):
    return (x ** 2 * torch.tensor([1.0, 1e4], dtype=x.dtype)).sum() + torch.cos(3 * x).sum()


def _wiggly(x):
    return (torch.sin(5 * x) + 0.1 * x ** 2).sum()


@pytest.mark.parametrize("fn,start,kwargs", [
    (_rosenbrock, [-1.5, 2.0], dict(lr=1.0)),
    (_rosenbrock, [-1.5, 2.0], dict(lr=1.0, tolerance_change=1e-2)),
    (_steep, [3.0, 1.0], dict(lr=10.0)),
    (_wiggly, [0.3, -2.0], dict(lr=5.0)),
    (_rosenbrock, [0.0, 0.0], dict(lr=100.0)),
    (_wiggly, [1.3, 2.0], dict(lr=50.0, history_size=2)),
], ids=lambda v: kwargs_id(v) if isinstance(v, dict) else getattr(v, "__name__", None))
def test_the_line_search_matches_torch_on_hard_functions(fn, start, kwargs):
    """Valleys, a condition number of 1e4, many local minima and huge initial steps drive the
    line search through its extrapolation, zoom and bracket-update branches (and the
    loss-change stopping test): every iterate equals torch's."""
    iterates = []
    for cls in (LBFGS, torch.optim.LBFGS):
        x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = cls([x], line_search_fn="strong_wolfe", max_iter=40, **kwargs)
        path = []
        for k in range(3):
            opt.step(closure_for(opt, [x], k, lambda ps, k: fn(ps[0])))
            path.append(x.detach().clone())
        iterates.append(torch.stack(path))
    assert torch.equal(*iterates)


def test_state_types_are_torchs():
    params = make_params(torch.float64, "cpu")
    opt = LBFGS(params, lr=0.5, history_size=3)
    run(opt, params, 3)
    state = opt.state[params[0]]
    assert sorted(state) == STATE_KEYS
    assert type(state["func_evals"]) is int and type(state["n_iter"]) is int
    assert type(state["prev_loss"]) is float
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) <= 3
    assert len(state["al"]) == 3
    assert opt.param_groups[0]["max_eval"] == 25 == torch.optim.LBFGS(params).defaults["max_eval"]


def test_finds_the_rosenbrock_minimum():
    """With the line search, a few calls reach the minimum (1, 1) of Rosenbrock's valley."""
    x = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = LBFGS([x], line_search_fn="strong_wolfe", max_iter=50)
    rosenbrock = lambda ps, k: (1 - ps[0][0]) ** 2 + 100 * (ps[0][1] - ps[0][0] ** 2) ** 2
    run(opt, [x], 5, loss_fn=rosenbrock)
    assert torch.allclose(x.detach(), torch.ones(2, dtype=torch.float64), atol=1e-6)


def test_complex_parameters_and_sparse_gradients_like_torch():
    """A complex parameter is optimised as pairs of reals; a sparse gradient (an embedding) is
    made dense; both as in torch."""
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(3, generator=gen, dtype=torch.complex128),
             torch.randn(5, 2, generator=gen, dtype=torch.float64)]
    target = torch.randn(3, generator=gen, dtype=torch.complex128)

    def loss_fn(ps, k):
        z, table = ps
        rows = F.embedding(torch.tensor([0, 3, 3]), table, sparse=True)
        return ((z - target).abs() ** 2).sum() + ((rows - 1.0) ** 2).sum() + (rows ** 4).sum()

    finals = []
    for cls in (LBFGS, torch.optim.LBFGS):
        ps = clone_params([p.requires_grad_() for p in start])
        opt = cls(ps, line_search_fn="strong_wolfe")
        run(opt, ps, 2, loss_fn=loss_fn)
        finals.append(ps)
    for a, b in zip(*finals):
        assert torch.equal(a, b)


def test_a_tensor_learning_rate_matches_torchs():
    for lr in (torch.tensor(0.5, dtype=torch.float64), torch.tensor([0.5])):
        p_ours, p_theirs = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
        run(LBFGS(p_ours, lr=lr), p_ours, 3)
        run(torch.optim.LBFGS(p_theirs, lr=lr), p_theirs, 3)
        for a, b in zip(p_ours, p_theirs):
            assert torch.equal(a, b)


def test_meta_device_is_refused_clearly():
    """Every iteration branches on values (stopping tests, the curvature test yᵀs > 1e-10, the
    line search), which meta tensors do not have: a clear error, no silent CPU fallback."""
    params = [torch.empty(3, 2, device="meta", requires_grad=True)]
    opt = LBFGS(params)
    with pytest.raises(NotImplementedError, match="LBFGS cannot step on meta tensors"):
        opt.step(lambda: params[0].sum())
    assert not opt.state


P = [torch.zeros(3, requires_grad=True)]


@pytest.mark.parametrize("call,exc,match", [
    (lambda: LBFGS(P, lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: LBFGS(P, max_iter=0), ValueError, r"Invalid max_iter: 0 \(must be >= 1\)"),
    (lambda: LBFGS(P, max_iter=2.5), TypeError, r"expected max_iter to be an int, got float"),
    (lambda: LBFGS(P, max_eval=0), ValueError, r"Invalid max_eval value: 0"),
    (lambda: LBFGS(P, tolerance_grad=-1.0), ValueError, r"Invalid tolerance_grad value: -1.0"),
    (lambda: LBFGS(P, tolerance_change=-1.0), ValueError,
     r"Invalid tolerance_change value: -1.0"),
    (lambda: LBFGS(P, history_size=0), ValueError, r"Invalid history_size: 0 \(must be >= 1\)"),
    (lambda: LBFGS(P, line_search_fn="armijo"), ValueError,
     r"Invalid line_search_fn: 'armijo'; expected one of \['strong_wolfe'\]"),
    (lambda: LBFGS([{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2)]}]), ValueError,
     r"LBFGS doesn't support per-parameter options \(parameter groups\)"),
    (lambda: LBFGS(P).step(None), TypeError, r"LBFGS.step needs a closure"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
