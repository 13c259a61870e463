"""nnbolts.diagnostics on cases small enough to compute by hand."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nnbolts.diagnostics import (
    LayerStatsReport,
    dead_fraction,
    grad_norms,
    layer_stats,
    output_range,
    saturated_fraction,
    update_ratio,
    update_ratios,
)


def fixed_net(device, dtype) -> nn.Sequential:
    """Linear(2, 3) -> ReLU -> Linear(3, 1) with round weights (see hand_case below)."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).to(device, dtype)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, -10.0]))
        net[2].weight.copy_(torch.tensor([[1.0, 1.0, 5.0]]))
        net[2].bias.copy_(torch.tensor([0.5]))
    return net


def hand_case(device, dtype):
    X = torch.tensor([[1.0, 2.0], [3.0, -1.0]], device=device, dtype=dtype)
    y = torch.tensor([[1.5], [2.5]], device=device, dtype=dtype)
    return fixed_net(device, dtype), X, y


def close(value, expected, dtype):
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert float(value) == pytest.approx(expected, rel=tol, abs=tol)


def test_forward_statistics_by_hand(device, dtype):
    net, X, _ = hand_case(device, dtype)
    report = layer_stats(net, X)
    assert [(s.name, s.kind) for s in report] == [("0", "Linear"), ("1", "ReLU"), ("2", "Linear")]
    # z = X W1^T + b1 = [[1, 2, -7], [3, -1, -8]]
    z = [1, 2, -7, 3, -1, -8]
    z_mean = sum(z) / 6
    z_std = math.sqrt(sum(v * v for v in z) / 6 - z_mean**2)
    close(report["0"].mean, -5 / 3, dtype)
    close(report["0"].std, z_std, dtype)
    close(report["0"].dead_fraction, 0.0, dtype)
    # relu(z) = [[1, 2, 0], [3, 0, 0]]: unit 3 is zero on both samples (dead), unit 2 on one only
    close(report["1"].mean, 1.0, dtype)
    close(report["1"].std, math.sqrt(14 / 6 - 1), dtype)
    close(report["1"].dead_fraction, 1 / 3, dtype)
    # output = [3.5, 3.5]: constant
    close(report["2"].mean, 3.5, dtype)
    close(report["2"].std, 0.0, dtype)
    assert report["1"].saturated_fraction is None  # ReLU has no upper end
    close(report["0"].weight_std, math.sqrt(4 / 6 - (4 / 6) ** 2), dtype)
    assert report.loss is None
    assert report["0"].grad_norm is None and report["0"].weight_grad_norm is None


def test_gradient_statistics_by_hand(device, dtype):
    net, X, y = hand_case(device, dtype)
    report = layer_stats(net, X, y, nn.functional.mse_loss)
    close(report.loss, ((3.5 - 1.5) ** 2 + (3.5 - 2.5) ** 2) / 2, dtype)
    out, hidden, pre = report["2"], report["1"], report["0"]
    # dL/dout = 2 (out - y) / N = [2, 1]
    close(out.grad_mean, 1.5, dtype)
    close(out.grad_std, 0.5, dtype)
    close(out.grad_norm, math.sqrt(5), dtype)
    # dL/dW2 = 2 * [1, 2, 0] + 1 * [3, 0, 0] = [5, 4, 0]
    close(out.weight_grad_mean, 3.0, dtype)
    close(out.weight_grad_std, math.sqrt(14 / 3), dtype)
    close(out.weight_grad_norm, math.sqrt(41), dtype)
    # dL/drelu = g_n * W2 = [[2, 2, 10], [1, 1, 5]]
    close(hidden.grad_mean, 21 / 6, dtype)
    close(hidden.grad_norm, math.sqrt(135), dtype)
    # dL/dz = dL/drelu * 1[z > 0] = [[2, 2, 0], [1, 0, 0]]
    close(pre.grad_mean, 5 / 6, dtype)
    close(pre.grad_norm, 3.0, dtype)
    # dL/dW1 = sum_n (dL/dz_n) x_n^T = [[5, 3], [2, 4], [0, 0]]
    close(pre.weight_grad_mean, 14 / 6, dtype)
    close(pre.weight_grad_norm, math.sqrt(54), dtype)
    assert hidden.weight_grad_norm is None  # ReLU has no weight


def test_statistics_stay_on_the_device(device, dtype):
    net, X, y = hand_case(device, dtype)
    report = layer_stats(net, X, y, nn.functional.mse_loss, bins=7)
    for s in report:
        for value in (s.mean, s.std, s.dead_fraction, s.grad_norm, s.hist_counts, s.hist_edges):
            assert value.device.type == device.type
        assert s.hist_counts.shape == (7,) and s.hist_edges.shape == (8,)
        assert float(s.hist_counts.sum()) == X.shape[0] * s.shape[1]
        assert float(s.grad_hist_counts.sum()) == X.shape[0] * s.shape[1]


def test_histogram_matches_torch_histc_and_its_edges(device):
    net, X, _ = hand_case(device, torch.float64)
    first = layer_stats(net, X, bins=4)["0"]
    values = torch.tensor([1.0, 2, -7, 3, -1, -8], dtype=torch.float64, device=device)
    torch.testing.assert_close(first.hist_counts, torch.histc(values, bins=4, min=-8, max=3))
    torch.testing.assert_close(
        first.hist_edges, torch.tensor([-8.0, -5.25, -2.5, 0.25, 3.0], device=device,
                                       dtype=torch.float64)
    )
    # A constant layer (the output, 3.5 twice): histc widens the range by 1 on each side.
    last = layer_stats(net, X, bins=4)["2"]
    assert last.hist_edges.tolist() == [2.5, 3.0, 3.5, 4.0, 4.5]
    assert last.hist_counts.tolist() == [0.0, 0.0, 2.0, 0.0]
    fixed = layer_stats(net, X, bins=2, hist_range=(0.0, 4.0))["1"]
    assert fixed.hist_edges.tolist() == [0.0, 2.0, 4.0]
    assert fixed.hist_counts.tolist() == [4.0, 2.0]  # relu output [1, 2, 0, 3, 0, 0]


@pytest.mark.parametrize(
    ("activation", "expected"), [(nn.Tanh(), 0.5), (nn.Sigmoid(), 0.5), (nn.Hardtanh(), 0.5)]
)
def test_saturated_fraction_of_bounded_activations(device, activation, expected):
    net = nn.Sequential(nn.Linear(1, 1, bias=False), activation).to(device, torch.float64)
    with torch.no_grad():
        net[0].weight.fill_(10.0)
    # pre-activations -10, 0, 0.05, 10: the two ends saturate, the middle two do not
    X = torch.tensor([[-1.0], [0.0], [0.005], [1.0]], device=device, dtype=torch.float64)
    report = layer_stats(net, X)
    assert float(report["1"].saturated_fraction) == expected
    assert report["0"].saturated_fraction is None


def test_saturation_threshold_is_an_argument():
    a = torch.tensor([[0.95, 0.5], [-0.97, 0.0]])
    assert float(saturated_fraction(a)) == 0.0
    assert float(saturated_fraction(a, tol=0.1)) == 0.5
    sig = torch.tensor([[0.004, 0.996], [0.5, 0.01]])
    assert float(saturated_fraction(sig, 0.0, 1.0)) == 0.5  # 0.004 and 0.996 are within 0.005


def test_output_ranges():
    assert output_range(nn.Tanh()) == (-1.0, 1.0)
    assert output_range(nn.Sigmoid()) == (0.0, 1.0)
    assert output_range(nn.Hardtanh(-2.0, 3.0)) == (-2.0, 3.0)
    assert output_range(nn.ReLU()) is None and output_range(nn.ReLU6()) is None


def test_dead_fraction_counts_units_dead_on_every_sample(device):
    a = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]], device=device)
    result = dead_fraction(a)
    assert result.device.type == device.type and result.ndim == 0
    assert float(result) == 0.5
    # Units of a conv-like (N, C, L) output are the (C, L) positions.
    assert float(dead_fraction(torch.zeros(3, 2, 5))) == 1.0
    assert float(dead_fraction(torch.tensor([0.0, 0.0]))) == 1.0  # a 1-D batch is one unit


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 0.5, -1.0]), min_size=3, max_size=3),
                min_size=1, max_size=6))
def test_dead_fraction_agrees_with_a_column_count(rows):
    a = torch.tensor(rows)
    dead_columns = sum(all(row[j] == 0.0 for row in rows) for j in range(3))
    assert float(dead_fraction(a)) == pytest.approx(dead_columns / 3)


def test_inplace_relu_does_not_corrupt_gradients():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1)).double()
    inplace = nn.Sequential(nn.Linear(3, 5), nn.ReLU(inplace=True), nn.Linear(5, 1)).double()
    inplace.load_state_dict(plain.state_dict())
    X, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    a = layer_stats(plain, X, y, nn.functional.mse_loss).to_rows()
    b = layer_stats(inplace, X, y, nn.functional.mse_loss).to_rows()
    assert a == b
    # and the Linear's pre-activation gradient is the masked one, not the ReLU's
    h = plain[0](X).detach().requires_grad_(True)
    nn.functional.mse_loss(plain[2](torch.relu(h)), y).backward()
    assert a[0]["grad_norm"] == pytest.approx(float(h.grad.norm()), rel=1e-12)


def test_model_gradients_are_left_alone():
    net, X, y = hand_case("cpu", torch.float64)
    layer_stats(net, X, y, nn.functional.mse_loss)
    assert all(p.grad is None for p in net.parameters())


def test_hooks_are_removed_even_when_forward_raises():
    net, X, y = hand_case("cpu", torch.float64)
    layer_stats(net, X, y, nn.functional.mse_loss)
    assert all(not m._forward_hooks for m in net.modules())
    with pytest.raises(RuntimeError):
        layer_stats(net, torch.ones(2, 5, dtype=torch.float64))  # wrong width: torch raises
    assert all(not m._forward_hooks for m in net.modules())

    def broken_loss(prediction, target):
        raise ArithmeticError("loss exploded")

    with pytest.raises(ArithmeticError):
        layer_stats(net, X, y, broken_loss)
    assert all(not m._forward_hooks for m in net.modules())


def test_a_module_called_twice_is_recorded_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    names = [s.name for s in layer_stats(Twice(), torch.randn(4, 2))]
    assert names == ["act", "lin", "act[1]"]


def test_layer_types_selects_the_recorded_layers():
    net, X, _ = hand_case("cpu", torch.float64)
    assert [s.name for s in layer_stats(net, X, layer_types=(nn.ReLU,))] == ["1"]


def test_report_converts_to_plain_python():
    net, X, y = hand_case("cpu", torch.float64)
    report = layer_stats(net, X, y, nn.functional.mse_loss, bins=3)
    assert isinstance(report, LayerStatsReport) and len(report) == 3
    rows = report.to_rows()
    assert rows[1]["name"] == "1" and rows[1]["kind"] == "ReLU"
    assert rows[1]["dead_fraction"] == pytest.approx(1 / 3)
    assert all(isinstance(v, float) for k, v in rows[0].items() if k not in ("name", "kind")
               and v is not None)
    full = report.to_dict()
    assert full["loss"] == pytest.approx(2.5)
    assert len(full["layers"][0]["hist_counts"]) == 3 and full["layers"][0]["shape"] == [2, 3]
    table = str(report)
    assert "dead_fraction" in table and "ReLU" in table and len(table.splitlines()) == 4
    with pytest.raises(KeyError, match="no layer named"):
        report["missing"]


def test_update_ratio_of_a_known_step(device, dtype):
    before = torch.tensor([3.0, 4.0], device=device, dtype=dtype)
    after = before - 0.01 * torch.tensor([6.0, 8.0], device=device, dtype=dtype)  # SGD, lr 0.01
    ratio = update_ratio(before, after)
    assert ratio.device.type == device.type and ratio.dtype == dtype
    close(ratio, 0.1 / 5, dtype)
    zero = torch.zeros(2, device=device, dtype=dtype)
    assert float(update_ratio(zero, zero)) == 0.0
    assert math.isinf(float(update_ratio(zero, before)))


def test_update_ratio_during_training():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    nn.functional.mse_loss(net(torch.randn(16, 4)), torch.randn(16, 1)).backward()
    optimizer.step()
    ratios = update_ratios(before, net)
    assert set(ratios) == set(before)
    for name, param in net.named_parameters():
        expected = (1e-3 * param.grad).norm() / before[name].norm()
        assert float(ratios[name]) == pytest.approx(float(expected), rel=1e-4)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
def test_grad_norms_match_clip_grad_norm(device, norm_type):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)).to(device)
    nn.functional.mse_loss(net(torch.randn(9, 5, device=device)),
                           torch.randn(9, 2, device=device)).backward()
    per_param, total = grad_norms(net, norm_type)
    assert set(per_param) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, param in net.named_parameters():
        torch.testing.assert_close(per_param[name],
                                   torch.linalg.vector_norm(param.grad, norm_type))
    reference = nn.utils.clip_grad_norm_(net.parameters(), math.inf, norm_type=norm_type)
    torch.testing.assert_close(total, reference)
    assert total.device.type == device.type


def test_grad_norms_without_gradients():
    per_param, total = grad_norms(nn.Linear(2, 2))
    assert per_param == {} and float(total) == 0.0


def test_bad_inputs_get_clear_errors():
    net, X, y = hand_case("cpu", torch.float64)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        layer_stats("not a model", X)
    with pytest.raises(ValueError, match="X is empty"):
        layer_stats(net, torch.empty(0, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="X to be a torch.Tensor"):
        layer_stats(net, [[1.0, 2.0]])
    with pytest.raises(ValueError, match="both y and loss_fn"):
        layer_stats(net, X, y)
    with pytest.raises(ValueError, match="no layer"):
        layer_stats(nn.Identity(), X)
    with pytest.raises(ValueError, match="scalar"):
        layer_stats(net, X, y, lambda p, t: (p - t) ** 2)
    with pytest.raises(ValueError, match="Invalid bins"):
        layer_stats(net, X, bins=0)
    with pytest.raises(ValueError, match="empty"):
        dead_fraction(torch.empty(0, 3))
    with pytest.raises(ValueError, match="batch dimension"):
        dead_fraction(torch.tensor(1.0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        dead_fraction([0.0, 1.0])
    with pytest.raises(ValueError, match="low=1"):
        saturated_fraction(torch.ones(2, 2), 1.0, 0.0)
    with pytest.raises(ValueError, match="Invalid saturation tolerance"):
        saturated_fraction(torch.ones(2, 2), tol=1.5)
    with pytest.raises(ValueError, match="shape"):
        update_ratio(torch.ones(2), torch.ones(3))
    with pytest.raises(TypeError, match="floating"):
        update_ratio(torch.ones(2, dtype=torch.int64), torch.ones(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        grad_norms([torch.ones(2)])
    with pytest.raises(ValueError, match="Invalid norm type"):
        grad_norms(net, -1.0)


def test_mlp_activation_layers_are_recorded_and_saturation_known():
    from nnbolts.models import mlp

    model = mlp([3, 5, 5, 1], activation="tanh", generator=torch.Generator().manual_seed(0))
    X = torch.randn(16, 3, generator=torch.Generator().manual_seed(1)) * 50
    report = layer_stats(model, X)
    kinds = [type(m).__name__ for m in model]
    assert len(report.to_rows()) == len(kinds)
    tanh_rows = [r for r in report.to_rows() if r["saturated_fraction"] is not None]
    assert len(tanh_rows) == 2 and tanh_rows[0]["saturated_fraction"] > 0.5  # inputs ~ 50


def test_layer_stats_survives_a_diverged_network():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    report = layer_stats(model, torch.ones(4, 2))
    assert report.to_rows()
