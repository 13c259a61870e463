"""clip_grad_norm_ against torch.nn.utils.clip_grad_norm_."""

import math

import pytest
import torch

from nnbolts.optim import clip_grad_norm_, total_grad_norm

NORM_TYPES = [2.0, 1.0, 3.0, 0.5, math.inf]


def _params(generator, dtype, device, *, scale, with_none=False):
    """Three to five tensors of random shapes with random gradients (one without, optionally)."""
    params = []
    n = int(torch.randint(3, 6, (), generator=generator))
    for i in range(n):
        shape = tuple(int(s) for s in torch.randint(1, 5, (int(torch.randint(0, 3, (),
                                                                             generator=generator)),),
                                                    generator=generator))
        p = torch.randn(shape, generator=generator, dtype=dtype).to(device).requires_grad_()
        if not (with_none and i == 1):
            p.grad = scale * torch.randn(shape, generator=generator, dtype=dtype).to(device)
        params.append(p)
    return params


def _copy(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_()
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=str)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_matches_torch_over_random_cases(norm_type, scale, dtype, device):
    generator = torch.Generator().manual_seed(int(1000 * scale) + int(10 * min(norm_type, 9)))
    for case in range(20):
        ours = _params(generator, dtype, device, scale=scale, with_none=case % 4 == 3)
        theirs = _copy(ours)
        max_norm = float(torch.rand((), generator=generator)) * 3 * scale + 1e-4
        got = clip_grad_norm_(ours, max_norm, norm_type)
        expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
        assert got.dtype == expected.dtype and got.device == expected.device
        torch.testing.assert_close(got, expected)
        for a, b in zip(ours, theirs):
            if b.grad is None:
                assert a.grad is None
            else:
                torch.testing.assert_close(a.grad, b.grad)


def test_below_the_threshold_nothing_changes_and_above_the_norm_is_capped():
    w = torch.zeros(2, requires_grad=True)
    w.grad = torch.tensor([3.0, 4.0], dtype=torch.float32)
    assert clip_grad_norm_([w], 10.0).item() == 5.0
    assert torch.equal(w.grad, torch.tensor([3.0, 4.0]))
    assert clip_grad_norm_(w, 1.0).item() == 5.0            # a single tensor is accepted
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8]) * (5 / (5 + 1e-6)))
    torch.testing.assert_close(total_grad_norm([w.grad]), torch.tensor(1.0))


def test_infinity_norm_is_the_largest_entry():
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.tensor([1.0, -7.0, 2.0]), torch.tensor([3.0, -4.0])
    assert clip_grad_norm_([a, b], 3.5, norm_type="inf").item() == 7.0
    torch.testing.assert_close(a.grad, torch.tensor([1.0, -7.0, 2.0]) * 3.5 / (7 + 1e-6))


def test_no_gradients_and_errors():
    w = torch.zeros(2, requires_grad=True)
    assert torch.equal(clip_grad_norm_([w], 1.0), torch.tensor(0.0))
    assert torch.equal(clip_grad_norm_([], 1.0), torch.tensor(0.0))
    w.grad = torch.tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError):
        clip_grad_norm_([w], -1.0)
    with pytest.raises(ValueError):
        clip_grad_norm_([w], 1.0, norm_type=0)
