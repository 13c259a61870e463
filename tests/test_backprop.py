"""nnbolts.backprop against autograd and torch.autograd.gradcheck: the hand-written backward
pass of a one-hidden-layer tanh network on many random shapes and batches (float32 and float64,
every device), the central-difference gradient and the relative error of a gradient check, the
argument checks, and the grader's known mistakes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nnbolts import backprop

SEEDS = range(20)
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-11, atol=1e-13)}


def _gen(seed):
    return torch.Generator().manual_seed(3000 + seed)


def _problem(seed, dtype, device, scale=None):
    g = _gen(seed)
    n, d, hidden, k = (int(torch.randint(lo, hi, (1,), generator=g))
                       for lo, hi in ((1, 9), (1, 6), (1, 7), (2, 6)))
    if scale is None:
        scale = (0.3, 1.0, 3.0)[seed % 3]

    def draw(*shape):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(device, dtype)

    params = {"W1": draw(hidden, d), "b1": draw(hidden), "W2": draw(k, hidden), "b2": draw(k)}
    X = draw(n, d)
    y = torch.randint(0, k, (n,), generator=g).to(device)
    return X, params, y


def _autograd(X, params, y):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    logits = F.linear(torch.tanh(F.linear(X, leaves["W1"], leaves["b1"])), leaves["W2"],
                      leaves["b2"])
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return logits.detach(), dict(zip(leaves, grads))


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_and_backward_match_autograd(seed, device, dtype):
    X, params, y = _problem(seed, dtype, device)
    before = {k: v.clone() for k, v in params.items()}
    logits, cache = backprop.mlp_forward(X, params)
    expected_logits, expected = _autograd(X, params, y)
    assert set(cache) == {"X", "Z1", "A1", "Z2"}
    assert cache["Z2"] is logits and cache["X"] is X
    torch.testing.assert_close(logits, expected_logits, **TOL[dtype])
    torch.testing.assert_close(cache["A1"], torch.tanh(cache["Z1"]), **TOL[dtype])
    grads = backprop.mlp_backward(cache, params, y)
    assert list(grads) == list(backprop.PARAMETERS)
    for key in backprop.PARAMETERS:
        assert grads[key].shape == params[key].shape
        assert grads[key].dtype == dtype and grads[key].device == params[key].device
        torch.testing.assert_close(grads[key], expected[key], **TOL[dtype])
        assert torch.equal(params[key], before[key])


def test_backward_with_huge_logits_is_finite(device):
    X, params, y = _problem(4, torch.float64, device, scale=30.0)
    logits, cache = backprop.mlp_forward(X, params)
    grads = backprop.mlp_backward(cache, params, y)
    _, expected = _autograd(X, params, y)
    for key in backprop.PARAMETERS:
        assert torch.isfinite(grads[key]).all()
        torch.testing.assert_close(grads[key], expected[key], **TOL[torch.float64])


def _smooth(a, c):
    def f(v):
        return (torch.sin(a * v) + 0.5 * (c * v) ** 2).sum() + torch.log1p((a * v).sum() ** 2)
    return f


@pytest.mark.parametrize("seed", range(10))
def test_numerical_gradient_matches_autograd_and_gradcheck(seed, device):
    g = _gen(seed)
    shape = [(5,), (2, 3), (2, 1, 3)][seed % 3]
    a = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
    c = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
    f = _smooth(a, c)
    before = x.clone()
    estimate = backprop.numerical_gradient(f, x, h=1e-6)
    assert torch.equal(x, before), "x must be left as it was"
    assert estimate.shape == x.shape and estimate.dtype == x.dtype and estimate.device == x.device
    leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(f(leaf), leaf)
    torch.testing.assert_close(estimate, exact, rtol=1e-7, atol=1e-8)
    assert backprop.relative_error(estimate, exact) < 1e-8
    assert backprop.gradient_check(f, x, exact) < 1e-8
    # gradcheck (eps = 1e-6, atol = 1e-5, rtol = 1e-3) accepts autograd's gradient of the same
    # f, and our estimate passes its elementwise test against that gradient too
    assert torch.autograd.gradcheck(f, (leaf,))
    assert ((estimate - exact).abs() <= 1e-5 + 1e-3 * exact.abs()).all()


def test_central_difference_is_second_order():
    f = _smooth(torch.tensor([1.5], dtype=torch.float64), torch.tensor([0.7], dtype=torch.float64))
    x = torch.tensor([0.3], dtype=torch.float64)
    leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(f(leaf), leaf)
    errors = [(backprop.numerical_gradient(f, x, h=h) - exact).abs().item()
              for h in (1e-2, 1e-3)]
    assert 50 < errors[0] / errors[1] < 200  # h^2: ten times smaller h, 100 times smaller error


@pytest.mark.parametrize("seed", range(8))
def test_gradient_check_separates_right_from_wrong(seed):
    X, params, y = _problem(seed, torch.float64, "cpu")
    _, cache = backprop.mlp_forward(X, params)
    grads = backprop.mlp_backward(cache, params, y)

    def loss_of_w1(W1):
        return F.cross_entropy(backprop.mlp_forward(X, {**params, "W1": W1})[0], y)

    right = backprop.gradient_check(loss_of_w1, params["W1"], grads["W1"])
    assert right < 1e-7
    if grads["W1"].norm() > 1e-8:
        assert backprop.gradient_check(loss_of_w1, params["W1"], 2 * grads["W1"]) > 0.3
        assert backprop.gradient_check(loss_of_w1, params["W1"], -grads["W1"]) > 0.9


def test_relative_error_formula():
    assert backprop.relative_error(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 4.5])) == (
        pytest.approx(0.5 / math.hypot(3, 4.5)))
    assert backprop.relative_error(torch.zeros(3), torch.zeros(3)) == 0.0
    assert backprop.relative_error(torch.tensor([1.0]), torch.tensor([-1.0])) == 2.0


def test_docstring_examples():
    params = {"W1": torch.eye(2), "b1": torch.zeros(2), "W2": torch.eye(2), "b2": torch.zeros(2)}
    assert backprop.mlp_forward(torch.zeros(1, 2), params)[0].tolist() == [[0.0, 0.0]]
    params = {"W1": torch.ones(1, 1), "b1": torch.zeros(1), "W2": torch.zeros(2, 1),
              "b2": torch.zeros(2)}
    _, cache = backprop.mlp_forward(torch.zeros(1, 1), params)
    assert backprop.mlp_backward(cache, params, torch.tensor([0]))["b2"].tolist() == [-0.5, 0.5]
    got = backprop.numerical_gradient(lambda v: (v ** 2).sum(),
                                      torch.tensor([1.0, -2.0], dtype=torch.float64), h=1e-3)
    torch.testing.assert_close(got, torch.tensor([2.0, -4.0], dtype=torch.float64))


def test_bad_arguments_name_the_argument():
    X, params, y = _problem(0, torch.float64, "cpu")
    _, cache = backprop.mlp_forward(X, params)
    with pytest.raises(TypeError, match="params"):
        backprop.mlp_forward(X, [params["W1"]])
    with pytest.raises(ValueError, match="'b2'"):
        backprop.mlp_forward(X, {k: v for k, v in params.items() if k != "b2"})
    with pytest.raises(ValueError, match="X must have shape"):
        backprop.mlp_forward(X[:, :0], params)
    with pytest.raises(ValueError, match="X is a torch.float32"):
        backprop.mlp_forward(X.float(), params)
    with pytest.raises(ValueError, match="do not fit"):
        backprop.mlp_forward(X, {**params, "b1": torch.zeros(99, dtype=torch.float64)})
    with pytest.raises(ValueError, match="cache has no 'A1'"):
        backprop.mlp_backward({k: v for k, v in cache.items() if k != "A1"}, params, y)
    with pytest.raises(TypeError, match="targets"):
        backprop.mlp_backward(cache, params, y.double())
    with pytest.raises(TypeError, match="f to be a function"):
        backprop.numerical_gradient(3.0, X)
    with pytest.raises(ValueError, match="step h"):
        backprop.numerical_gradient(lambda v: v.sum(), X, h=0.0)
    with pytest.raises(TypeError, match="h to be a number"):
        backprop.numerical_gradient(lambda v: v.sum(), X, h="1e-6")
    with pytest.raises(ValueError, match="f must return a scalar"):
        backprop.numerical_gradient(lambda v: v, X)
    with pytest.raises(TypeError, match="floating tensor for x"):
        backprop.numerical_gradient(lambda v: v.sum(), torch.arange(3))
    with pytest.raises(ValueError, match="analytic has shape"):
        backprop.gradient_check(lambda v: v.sum(), X, X[0])


# --------------------------------------------------------------------------------------------
# the grader's known mistakes (nnbolts.grading._backprop_mistakes)
# --------------------------------------------------------------------------------------------

class _Smooth:
    """A scalar function as the grader passes it (a harness object with tensor attributes)."""

    def __init__(self, a, c):
        self.a, self.c = a, c

    def __call__(self, v):
        return _smooth(self.a, self.c)(v)


def _inputs(name):
    from nnbolts import grading

    def network(case):
        n, d, hidden, k = (case.randint(2, 7), case.randint(1, 5), case.randint(2, 6),
                           case.randint(2, 5))
        params = {"W1": case.randn(hidden, d), "b1": case.randn(hidden),
                  "W2": case.randn(k, hidden), "b2": case.randn(k)}
        X = case.randn(n, d, scale=2.0)
        if name == "mlp_forward":
            return grading.Call(X, params)
        y = torch.tensor([case.randint(0, k) for _ in range(n)], device=case.device)
        return grading.Call(backprop.mlp_forward(X, params)[1], params, y)

    def scalar(case):
        shape = case.shape(min_dims=1, max_dims=2, min_size=2, max_size=4)
        f = _Smooth(case.randn(*shape), case.randn(*shape))
        x = case.randn(*shape)
        if name == "numerical_gradient":
            return grading.Call(f, x, h=1e-3)
        leaf = x.clone().requires_grad_()
        (exact,) = torch.autograd.grad(f(leaf), leaf)
        return grading.Call(f, x, exact * (1.0, 1.5, 0.5, -1.0)[case.index % 4], h=1e-5)

    return network if name.startswith("mlp") else scalar


@pytest.mark.parametrize("name", ["mlp_forward", "mlp_backward", "numerical_gradient",
                                  "gradient_check"])
def test_the_grader_names_every_known_mistake(name):
    from nnbolts import grading

    reference = getattr(backprop, name)
    dtypes = [torch.float64] if "grad" in name and "mlp" not in name else None
    grading.check_function(reference, reference, _inputs(name), n_cases=6, devices=["cpu"],
                           dtypes=dtypes)
    mistakes = grading.known_mistakes(reference)
    assert len(mistakes) >= 3
    for mistake in mistakes:
        with pytest.raises(grading.GradingFailure) as failure:
            grading.check_function(mistake.fn, reference, _inputs(name), n_cases=6,
                                   devices=["cpu"], dtypes=dtypes)
        assert f"This looks like: {mistake.name}" in str(failure.value), str(failure.value)


# --------------------------------------------------------------------------------------------
# exercise 08's trusted checks accept honest answers written unlike the solution
# --------------------------------------------------------------------------------------------

_UNUSUAL = '''
def mlp_forward(X, params):
    Z1 = F.linear(X, params["W1"], params["b1"])
    A1 = Z1.tanh()
    Z2 = torch.addmm(params["b2"], A1, params["W2"].t())
    return Z2, dict(X=X, Z1=Z1, A1=A1, Z2=Z2)


def mlp_backward(cache, params, targets):
    Z2 = cache["Z2"]
    log_p = Z2 - Z2.logsumexp(dim=1, keepdim=True)
    G2 = log_p.exp().scatter_add(1, targets[:, None], -torch.ones_like(Z2[:, :1])) / len(Z2)
    G1 = torch.einsum("nk,kh->nh", G2, params["W2"]) * (1 - cache["A1"] ** 2)
    return {"W2": torch.einsum("nk,nh->kh", G2, cache["A1"]), "b2": G2.sum(0),
            "W1": torch.einsum("nh,nd->hd", G1, cache["X"]), "b1": G1.sum(0)}


def numerical_gradient(f, x, h=1e-6):
    """In place, each element put back from its saved value."""
    grad = torch.empty_like(x)
    flat, out = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        saved = flat[i].clone()
        flat[i] = saved + h
        up = f(x)
        flat[i] = saved - h
        down = f(x)
        flat[i] = saved
        out[i] = (up - down) / (2 * h)
    return grad


def gradient_check(f, x, analytic, h=1e-6):
    estimate = numerical_gradient(f, x, h=h)
    norms = torch.stack([torch.linalg.vector_norm(estimate), torch.linalg.vector_norm(analytic)])
    if norms.max() == 0:
        return 0.0
    return float(torch.linalg.vector_norm(estimate - analytic) / norms.max())
'''


@pytest.mark.parametrize("seed", [1, 7])
def test_exercise_08_accepts_unusual_but_right_answers(seed):
    import builtins

    from instructor import course, trusted

    nb = course.notebook_from_markdown(course.SOLUTIONS / "08-backprop" / "backprop.md")
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    tests = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("grade") and not meta.get("solution"):
            tests[meta["grade_id"]] = cell.source
        else:
            exec(compile(cell.source, meta.get("grade_id", "cell"), "exec"), namespace)
    exec(compile(_UNUSUAL, "unusual", "exec"), namespace)
    for grade_id in ("test_mlp_forward", "test_mlp_backward", "test_numerical_gradient",
                     "test_gradient_check"):
        block = trusted.hidden_block(tests[grade_id])
        verdict = trusted.judge(block, trusted.LocalChannel(namespace), seed=seed)
        assert verdict.passed, (grade_id, verdict.message)
