"""Tests of nnbolts.models: the mlp builder, its activation layers and its initialisation."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnbolts.models import INITIALIZERS, Activation, mlp


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


# ---------------------------------------------------------------------------------------------
# structure and forward pass
# ---------------------------------------------------------------------------------------------


def test_structure_follows_sizes():
    net = mlp([2, 16, 8, 1], "tanh", generator=seeded())
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Activation", "Linear", "Activation", "Linear"]
    assert [(m.in_features, m.out_features) for m in linears(net)] == [(2, 16), (16, 8), (8, 1)]
    assert all(m.name == "tanh" for m in net if isinstance(m, Activation))
    assert "(1): Activation(tanh)" in repr(net)


def test_two_sizes_give_a_single_linear_layer():
    net = mlp([5, 3], generator=seeded())
    assert len(net) == 1 and isinstance(net[0], nn.Linear)


def test_forward_and_backward_on_device(device, dtype):
    net = mlp([3, 16, 16, 2], "silu", generator=seeded(), dtype=dtype, device=device)
    for p in net.parameters():
        assert p.device.type == device.type and p.dtype == dtype
    x = torch.randn(7, 3, dtype=dtype, device=device)
    out = net(x)
    assert out.shape == (7, 2) and out.dtype == dtype and out.device.type == device.type
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_forward_equals_the_torch_network():
    net = mlp([4, 6, 3], ("leaky_relu", {"negative_slope": 0.2}), generator=seeded())
    reference = nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2), nn.Linear(6, 3))
    reference.load_state_dict(net.state_dict())
    x = torch.randn(10, 4)
    torch.testing.assert_close(net(x), reference(x))


def test_output_activation():
    x = torch.randn(20, 3)
    probs = mlp([3, 8, 5], output_activation="softmax", generator=seeded())(x)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(20))
    p = mlp([3, 8, 1], output_activation="sigmoid", generator=seeded())(x)
    assert ((p > 0) & (p < 1)).all()
    net = mlp([3, 8, 1], output_activation="sigmoid", generator=seeded())
    assert isinstance(net[-1], Activation) and net[-1].name == "sigmoid"


def test_biases_start_at_zero_or_are_absent():
    net = mlp([3, 8, 2], "relu", "normal", generator=seeded())
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in linears(net))
    assert all(m.bias is None for m in linears(mlp([3, 8, 2], bias=False, generator=seeded())))


def test_meta_device_builds_shapes_only():
    net = mlp([100, 50, 10], device="meta", generator=seeded())
    assert all(p.is_meta for p in net.parameters())
    assert net(torch.empty(4, 100, device="meta")).shape == (4, 10)


# ---------------------------------------------------------------------------------------------
# the Activation layer
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, reference",
    [
        ("relu", {}, F.relu),
        ("tanh", {}, torch.tanh),
        ("sigmoid", {}, torch.sigmoid),
        ("elu", {"alpha": 0.5}, lambda z: F.elu(z, alpha=0.5)),
        ("leaky_relu", {"negative_slope": 0.1}, lambda z: F.leaky_relu(z, 0.1)),
        ("silu", {}, F.silu),
        ("identity", {}, lambda z: z),
    ],
)
def test_activation_layer_matches_torch_with_gradients(name, kwargs, reference, dtype):
    z = torch.linspace(-4, 4, 41, dtype=dtype).requires_grad_()
    ours = Activation(name, **kwargs)(z)
    theirs = reference(z)
    torch.testing.assert_close(ours, theirs)
    (g_ours,) = torch.autograd.grad(ours.sum(), z)
    (g_theirs,) = torch.autograd.grad(theirs.sum(), z)
    torch.testing.assert_close(g_ours, g_theirs)


def test_activation_layer_has_no_state_and_copies():
    layer = Activation("leaky_relu", negative_slope=0.3)
    assert repr(layer) == "Activation(leaky_relu, negative_slope=0.3)"
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    twin = copy.deepcopy(layer)
    z = torch.randn(5)
    torch.testing.assert_close(twin(z), layer(z))
    assert Activation("linear").name == "identity"  # aliases resolve to the registry name


# ---------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------


def test_same_generator_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = mlp([4, 32, 32, 2], generator=seeded(5))
    b = mlp([4, 32, 32, 2], generator=seeded(5))
    c = mlp([4, 32, 32, 2], generator=seeded(6))
    assert torch.equal(torch.rand(3), expected)  # mlp drew nothing from the global generator
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert pa.dim() == 1 or not torch.equal(pa, pc)


def test_cpu_generator_gives_the_same_weights_on_every_device(device):
    cpu = mlp([3, 10, 2], "tanh", "xavier_normal", generator=seeded(2))
    there = mlp([3, 10, 2], "tanh", "xavier_normal", generator=seeded(2), device=device)
    for p, q in zip(cpu.parameters(), there.parameters()):
        assert q.device.type == device.type
        assert torch.equal(p, q.cpu())


@pytest.mark.parametrize(
    "activation, init, torch_init",
    [
        ("tanh", "xavier_uniform",
         lambda w, g: nn.init.xavier_uniform_(w, gain=5 / 3, generator=g)),
        ("sigmoid", "xavier_normal", lambda w, g: nn.init.xavier_normal_(w, gain=1.0, generator=g)),
        ("relu", "kaiming_normal",
         lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)),
        ("relu", "kaiming_uniform",
         lambda w, g: nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=g)),
        (("leaky_relu", {"negative_slope": 0.2}), "kaiming_normal",
         lambda w, g: nn.init.kaiming_normal_(w, a=0.2, nonlinearity="leaky_relu", generator=g)),
        ("leaky_relu", "kaiming_uniform",
         lambda w, g: nn.init.kaiming_uniform_(w, a=0.01, nonlinearity="leaky_relu", generator=g)),
        ("relu", ("kaiming_normal", {"mode": "fan_out"}),
         lambda w, g: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu",
                                              generator=g)),
        ("sigmoid", ("xavier_uniform", {"gain": 4.0}),
         lambda w, g: nn.init.xavier_uniform_(w, gain=4.0, generator=g)),
        ("relu", "lecun_normal",
         lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g)),
        ("relu", ("normal", {"std": 0.01}), lambda w, g: nn.init.normal_(w, std=0.01, generator=g)),
        ("relu", ("uniform", {"a": -0.1, "b": 0.1}),
         lambda w, g: nn.init.uniform_(w, -0.1, 0.1, generator=g)),
    ],
)
def test_weights_are_bit_identical_to_torch_nn_init(activation, init, torch_init):
    sizes = [6, 9, 4]
    net = mlp(sizes, activation, init, generator=seeded(7))
    g = seeded(7)
    for layer, (fan_in, fan_out) in zip(linears(net), zip(sizes[:-1], sizes[1:])):
        expected = torch_init(torch.empty(fan_out, fan_in), g)
        assert torch.equal(layer.weight, expected)


WIDE = 512


@pytest.mark.parametrize(
    "activation, init, std",
    [
        ("tanh", "xavier_uniform", 5 / 3 * math.sqrt(2 / (2 * WIDE))),
        ("tanh", "xavier_normal", 5 / 3 * math.sqrt(2 / (2 * WIDE))),
        ("sigmoid", "xavier_uniform", math.sqrt(2 / (2 * WIDE))),
        ("relu", "kaiming_normal", math.sqrt(2 / WIDE)),
        ("relu", "kaiming_uniform", math.sqrt(2 / WIDE)),
        ("relu", "lecun_uniform", math.sqrt(1 / WIDE)),
        ("tanh", ("normal", {"std": 0.01}), 0.01),
        ("tanh", ("normal", {"std": 1.0}), 1.0),
        ("relu", "zeros", 0.0),
    ],
)
def test_weight_statistics_follow_the_initializer(activation, init, std):
    net = mlp([WIDE, WIDE, WIDE], activation, init, generator=seeded(1))
    for layer in linears(net):
        w = layer.weight
        assert abs(w.mean().item()) < 0.02 * std + 1e-12
        assert w.std().item() == pytest.approx(std, rel=0.02, abs=1e-12)


def test_constant_init_and_callable_init():
    net = mlp([3, 4, 2], "relu", ("constant", {"val": 0.5}))
    assert all(torch.equal(m.weight, torch.full_like(m.weight, 0.5)) for m in linears(net))

    def ones(weight, generator=None):
        with torch.no_grad():
            weight.fill_(1.0)

    net = mlp([3, 4, 2], "relu", ones)
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in linears(net))


def test_constant_init_never_breaks_the_symmetry_between_units():
    # Every hidden unit computes the same value and receives the same gradient: the units
    # stay clones of each other however long we train. Random init is what breaks the tie.
    net = mlp([3, 6, 1], "tanh", ("constant", {"val": 0.3}), dtype=torch.float64)
    x = torch.randn(16, 3, dtype=torch.float64)
    net(x).square().mean().backward()
    hidden = net[1](net[0](x))
    assert torch.allclose(hidden, hidden[:, :1].expand_as(hidden))
    grad = net[0].weight.grad
    assert torch.allclose(grad, grad[:1].expand_as(grad))


def _last_hidden(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net[:-1](x)


def test_init_scale_decides_whether_the_signal_vanishes_survives_or_saturates():
    # The initialisation chapter's demonstration: ten tanh layers of width 256.
    sizes = [256] * 11 + [1]
    x = torch.randn(512, 256, generator=seeded(0))
    small = _last_hidden(mlp(sizes, "tanh", ("normal", {"std": 0.01}), generator=seeded(1)), x)
    good = _last_hidden(mlp(sizes, "tanh", "xavier_uniform", generator=seeded(1)), x)
    large = _last_hidden(mlp(sizes, "tanh", ("normal", {"std": 1.0}), generator=seeded(1)), x)
    assert small.std() < 1e-6  # vanished
    assert 0.2 < good.std() < 0.9  # alive, not saturated
    assert (large.abs() > 0.99).float().mean() > 0.8  # saturated at ±1


def test_initializer_names_are_listed():
    assert set(INITIALIZERS) == {
        "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "lecun_uniform",
        "lecun_normal", "normal", "uniform", "zeros", "constant",
    }


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (([3],), {}, ValueError, r"Invalid sizes: \[3\] \(need at least an input and an output"),
        (([],), {}, ValueError, r"Invalid sizes: \[\]"),
        (([2, 0, 1],), {}, ValueError, r"Invalid sizes\[1\]: 0"),
        (([2, -4],), {}, ValueError, r"Invalid sizes\[1\]: -4"),
        (([2, 3.5],), {}, TypeError, r"sizes\[1\] to be an int, got float"),
        (("23",), {}, TypeError, r"sizes to be a list of ints, got str"),
        ((5,), {}, TypeError, r"sizes to be a list of ints, got int"),
        (([2, 1], "relu6"), {}, ValueError, r"Unknown activation: 'relu6'"),
        (([2, 1], 3), {}, TypeError, r"name to be a str"),
        (([2, 1], "relu", "glorot"), {}, ValueError, r"Unknown init: 'glorot'; expected one of"),
        (([2, 1], "relu", ("normal", 0.01)), {}, TypeError, r"init as 'name' or \('name'"),
        (([2, 1], "relu", ("normal", {"stdev": 0.1})), {}, TypeError, r"stdev"),
        (([2, 1], "relu", ("normal", {"std": -0.1})), {}, ValueError, r"Invalid std: -0\.1"),
        (([2, 1],), {"output_activation": "softplus"}, ValueError, r"Unknown activation"),
        (([2, 1],), {"bias": "yes"}, TypeError, r"bias to be a bool"),
        (([2, 1],), {"dtype": torch.int64}, TypeError, r"floating torch\.dtype"),
        (([2, 1],), {"generator": 42}, TypeError, r"generator to be a torch\.Generator"),
    ],
)
def test_mlp_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        mlp(*args, **kwargs)
