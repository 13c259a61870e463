"""nnbolts.losses against torch.nn.functional and autograd: many random cases, float32 and
float64, large logits (no overflow), and the edge cases the docstrings promise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nnbolts import losses

DTYPES = [torch.float32, torch.float64]
SEEDS = range(25)
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def _gen(seed):
    return torch.Generator().manual_seed(1000 + seed)


def _logits(seed, dtype, scale=None):
    g = _gen(seed)
    n = int(torch.randint(1, 9, (1,), generator=g))
    k = int(torch.randint(2, 8, (1,), generator=g))
    if scale is None:
        scale = (0.1, 1.0, 5.0, 50.0, 1e3, 1e4)[seed % 6]
    z = (torch.randn(n, k, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.randint(0, k, (n,), generator=g)
    return z, y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_mse_and_grad_match_torch(seed, dtype):
    g = _gen(seed)
    dims = int(torch.randint(1, 4, (1,), generator=g))
    shape = tuple(int(s) for s in torch.randint(1, 6, (dims,), generator=g))
    pred = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    target = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    expected = F.mse_loss(pred, target)
    (grad,) = torch.autograd.grad(expected, pred)
    got = losses.mse(pred.detach(), target)
    assert got.dtype == dtype and got.shape == ()
    torch.testing.assert_close(got, expected.detach(), **TOL[dtype])
    torch.testing.assert_close(losses.mse_grad(pred.detach(), target), grad, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_log_softmax_matches_torch(seed, dtype):
    z, _ = _logits(seed, dtype)
    for dim in (0, 1, -1):
        got = losses.log_softmax(z, dim=dim)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, F.log_softmax(z, dim=dim), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_and_grad_match_torch(seed, dtype):
    z, y = _logits(seed, dtype)
    z = z.requires_grad_()
    expected = F.cross_entropy(z, y)
    (grad,) = torch.autograd.grad(expected, z)
    got = losses.cross_entropy(z.detach(), y)
    assert torch.isfinite(got) and got.dtype == dtype and got.shape == ()
    torch.testing.assert_close(got, expected.detach(), **TOL[dtype])
    got_grad = losses.cross_entropy_grad(z.detach(), y)
    torch.testing.assert_close(got_grad, grad, **TOL[dtype])
    torch.testing.assert_close(got_grad.sum(1), torch.zeros(len(y), dtype=dtype),
                               rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_kl_div_matches_torch(seed, dtype):
    a, _ = _logits(seed, dtype)
    b, _ = _logits(seed + 100, dtype, scale=(1.0, 5.0, 100.0)[seed % 3])
    b = b[: a.shape[0]] if b.shape[0] >= a.shape[0] else b.repeat(a.shape[0], 1)[: a.shape[0]]
    b = b[:, : a.shape[1]] if b.shape[1] >= a.shape[1] else torch.cat(
        [b, b[:, :1].expand(-1, a.shape[1] - b.shape[1])], 1)
    log_p, log_q = F.log_softmax(a, 1), F.log_softmax(b, 1)
    expected = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
    got = losses.kl_div(log_p, log_q)
    assert torch.isfinite(got) and got.shape == () and got.dtype == dtype
    torch.testing.assert_close(got, expected, **TOL[dtype])
    # the direction: D_KL(q || p) is F.kl_div(log p, log q), not the other way round
    by_hand = (log_q.exp() * (log_q - log_p)).sum() / a.shape[0]
    torch.testing.assert_close(got, by_hand, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_overflow_for_huge_logits(dtype):
    z = torch.tensor([[1e4, 0.0, -1e4], [-3e4, 3e4, 0.0], [0.0, 0.0, 0.0]], dtype=dtype)
    y = torch.tensor([0, 0, 2])
    ce = losses.cross_entropy(z, y)
    assert torch.isfinite(ce)
    torch.testing.assert_close(ce, F.cross_entropy(z, y))
    torch.testing.assert_close(ce, torch.tensor((0.0 + 6e4 + math.log(3)) / 3, dtype=dtype))
    grad = losses.cross_entropy_grad(z, y)
    assert torch.isfinite(grad).all()
    zz = z.clone().requires_grad_()
    (auto,) = torch.autograd.grad(F.cross_entropy(zz, y), zz)
    torch.testing.assert_close(grad, auto)
    assert torch.isfinite(losses.log_softmax(z, dim=1)).all()


def test_uniform_prediction_costs_log_k():
    for k in (2, 10, 1000):
        z = torch.zeros(4, k, dtype=torch.float64)
        y = torch.arange(4) % k
        assert losses.cross_entropy(z, y).item() == pytest.approx(math.log(k), rel=1e-12)


def test_kl_div_zero_targets_and_identity():
    log_p = torch.tensor([[0.9, 0.1]], dtype=torch.float64).log()
    log_q = torch.tensor([[1.0, 0.0]], dtype=torch.float64).log()  # log 0 = -inf
    assert losses.kl_div(log_p, log_q).item() == pytest.approx(-math.log(0.9))
    assert losses.kl_div(log_p, log_p).item() == 0.0
    # H(q, p) = H(q) + D_KL(q || p) with soft targets
    q = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    z = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], dtype=torch.float64)
    log_p = losses.log_softmax(z, dim=1)
    cross = -(q * log_p).sum() / 2
    entropy = -(q * q.log()).sum() / 2
    assert (entropy + losses.kl_div(log_p, q.log())).item() == pytest.approx(cross.item())


def test_docstring_examples():
    assert losses.mse(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).item() == 2.5
    assert losses.mse_grad(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).tolist() == [1, 2]
    assert losses.log_softmax(torch.tensor([0.0, 0.0, 1e4])).tolist() == [-1e4, -1e4, 0.0]
    assert losses.cross_entropy_grad(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).tolist() == [
        [0.5, -0.5]]


def test_inputs_are_not_modified_and_errors():
    z = torch.randn(3, 4, generator=_gen(0))
    y = torch.tensor([0, 3, 1])
    before = z.clone()
    losses.cross_entropy(z, y)
    losses.cross_entropy_grad(z, y)
    assert torch.equal(z, before)
    with pytest.raises(TypeError):
        losses.cross_entropy(z, y.float())
    with pytest.raises(ValueError):
        losses.cross_entropy(z, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError):
        losses.cross_entropy(z[0], y[:1])
    with pytest.raises(ValueError):
        losses.mse(z, z[:2])
    with pytest.raises(TypeError):
        losses.kl_div(z, z.double())


# --------------------------------------------------------------------------------------------
# the grader's known mistakes of the losses (nnbolts.grading._loss_mistakes)
# --------------------------------------------------------------------------------------------

def _inputs(name):
    from nnbolts import grading

    def regression(case):
        shape = case.shape(min_dims=2, max_dims=3, min_size=2, max_size=5)
        return grading.Call(case.randn(*shape), case.randn(*shape))

    def classification(case):
        n, k = case.randint(2, 7), case.randint(2, 6)
        scale = (0.5, 3.0, 1e3)[case.index % 3]
        labels = [case.randint(0, k) for _ in range(n)]
        return grading.Call(case.randn(n, k, scale=scale), torch.tensor(labels))

    def distributions(case):
        n, k = case.randint(2, 7), case.randint(2, 6)
        return grading.Call(torch.log_softmax(case.randn(n, k), 1),
                            torch.log_softmax(case.randn(n, k, scale=2.0), 1))

    def scores(case):
        return grading.Call(case.logits(), dim=(-1, 0, 1)[case.index % 3])

    return {"mse": regression, "mse_grad": regression, "cross_entropy": classification,
            "cross_entropy_grad": classification, "kl_div": distributions,
            "log_softmax": scores}[name]


@pytest.mark.parametrize("name", ["mse", "mse_grad", "log_softmax", "cross_entropy",
                                  "cross_entropy_grad", "kl_div"])
def test_the_grader_names_every_known_mistake(name):
    from nnbolts import grading

    reference = getattr(losses, name)
    grading.check_function(reference, reference, _inputs(name), n_cases=6, devices=["cpu"])
    mistakes = grading.known_mistakes(reference)
    assert len(mistakes) >= 3
    for mistake in mistakes:
        with pytest.raises(grading.GradingFailure) as failure:
            grading.check_function(mistake.fn, reference, _inputs(name), n_cases=6,
                                   devices=["cpu"])
        assert f"This looks like: {mistake.name}" in str(failure.value), str(failure.value)
