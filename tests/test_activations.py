"""nnbolts.activations against torch.nn.functional (values) and torch.autograd (derivatives)."""

import dataclasses
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nnbolts import activations as A
from nnbolts.activations import ACTIVATIONS, Activation, get_activation

# (id, ours, our derivative, torch's function, keyword arguments shared by all three)
ELEMENTWISE = [
    ("identity", A.identity, A.identity_grad, lambda z: z * 1, {}),
    ("sigmoid", A.sigmoid, A.sigmoid_grad, torch.sigmoid, {}),
    ("tanh", A.tanh, A.tanh_grad, torch.tanh, {}),
    ("relu", A.relu, A.relu_grad, F.relu, {}),
    ("leaky_relu", A.leaky_relu, A.leaky_relu_grad, F.leaky_relu, {}),
    ("leaky_relu-0.2", A.leaky_relu, A.leaky_relu_grad, F.leaky_relu, {"negative_slope": 0.2}),
    ("elu", A.elu, A.elu_grad, F.elu, {}),
    ("elu-0.5", A.elu, A.elu_grad, F.elu, {"alpha": 0.5}),
    ("elu-0", A.elu, A.elu_grad, F.elu, {"alpha": 0.0}),
    ("silu", A.silu, A.silu_grad, F.silu, {}),
]
ELEMENTWISE_IDS = [case[0] for case in ELEMENTWISE]

# (id, ours, our vector-Jacobian product, torch's function)
SOFTMAXES = [
    ("softmax", A.softmax, A.softmax_grad, F.softmax),
    ("log_softmax", A.log_softmax, A.log_softmax_grad, F.log_softmax),
]
SOFTMAX_IDS = [case[0] for case in SOFTMAXES]

EXTREMES = [-1e4, -1e3, -100.0, -20.0, -1.0, -1e-30, -0.0, 0.0, 1e-30, 1.0, 20.0, 100.0, 1e3, 1e4]

PROPERTY = settings(max_examples=60, deadline=None, database=None)


def random_inputs(device, dtype, seed):
    """Seeded inputs at several scales, plus exact zeros (where the kinks are)."""
    g = torch.Generator().manual_seed(seed)
    parts = [torch.randn(400, generator=g, dtype=torch.float64) * s for s in (0.1, 1, 5, 40)]
    parts.append(torch.zeros(3, dtype=torch.float64))
    return torch.cat(parts).to(device=device, dtype=dtype)


def torch_derivative(fn, z, **kwargs):
    z = z.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(z, **kwargs).sum(), z)
    return grad


def torch_vjp(fn, z, grad_output, dim):
    z = z.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(z, dim=dim), z, grad_output)
    return grad


# ---------------------------------------------------------------------------------------------
# values and derivatives against torch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fn", "grad", "ref", "kwargs"), ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_matches_torch(name, fn, grad, ref, kwargs, device, dtype):
    for seed in range(5):
        z = random_inputs(device, dtype, seed)
        before = z.clone()
        torch.testing.assert_close(fn(z, **kwargs), ref(z, **kwargs), msg=f"{name} seed {seed}")
        torch.testing.assert_close(
            grad(z, **kwargs), torch_derivative(ref, z, **kwargs), msg=f"{name}_grad seed {seed}"
        )
        assert torch.equal(z, before), f"{name} modified its input"


@pytest.mark.parametrize(("name", "fn", "vjp", "ref"), SOFTMAXES, ids=SOFTMAX_IDS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_matches_torch(name, fn, vjp, ref, dim, device, dtype):
    g = torch.Generator().manual_seed(1234)
    for scale in (0.1, 1.0, 10.0, 100.0):
        z = (torch.randn(4, 7, 5, generator=g, dtype=torch.float64) * scale).to(device, dtype)
        grad_output = torch.randn(4, 7, 5, generator=g, dtype=torch.float64).to(device, dtype)
        torch.testing.assert_close(fn(z, dim=dim), ref(z, dim=dim), msg=f"{name} scale {scale}")
        torch.testing.assert_close(
            vjp(z, grad_output, dim=dim),
            torch_vjp(ref, z, grad_output, dim),
            msg=f"{name}_grad scale {scale}",
        )


def test_kink_conventions(device, dtype):
    zero = torch.zeros(3, device=device, dtype=dtype)
    # relu'(0) = 0 as in torch; leaky_relu'(0) = slope and elu'(0) = alpha as in torch.
    assert torch.equal(A.relu_grad(zero), torch.zeros_like(zero))
    assert torch.equal(A.leaky_relu_grad(zero, 0.3), torch.full_like(zero, 0.3))
    assert torch.equal(A.elu_grad(zero, alpha=0.7), torch.full_like(zero, 0.7))


def test_softmax_edge_shapes(dtype):
    scalar = torch.tensor(3.0, dtype=dtype)
    torch.testing.assert_close(A.softmax(scalar, dim=0), F.softmax(scalar, dim=0))
    torch.testing.assert_close(A.log_softmax(scalar), F.log_softmax(scalar, dim=-1))
    empty = torch.empty(3, 0, dtype=dtype)
    assert A.softmax(empty).shape == (3, 0)
    assert A.log_softmax(empty, dim=0).shape == (3, 0)


def test_identity_returns_a_copy():
    z = torch.tensor([1.0, 2.0])
    out = A.identity(z)
    out.add_(1)
    assert torch.equal(z, torch.tensor([1.0, 2.0]))


# ---------------------------------------------------------------------------------------------
# numerical stability
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fn", "grad", "ref", "kwargs"), ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_extreme_inputs(name, fn, grad, ref, kwargs, device, dtype):
    z = torch.tensor(EXTREMES, device=device, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, slope = fn(z, **kwargs), grad(z, **kwargs)
    assert torch.isfinite(value).all(), f"{name}: {value}"
    assert torch.isfinite(slope).all(), f"{name}_grad: {slope}"
    torch.testing.assert_close(value, ref(z, **kwargs))
    torch.testing.assert_close(slope, torch_derivative(ref, z, **kwargs))


@pytest.mark.parametrize(("name", "fn", "vjp", "ref"), SOFTMAXES, ids=SOFTMAX_IDS)
def test_softmax_family_extreme_inputs(name, fn, vjp, ref, device, dtype):
    z = torch.tensor([EXTREMES, EXTREMES[::-1]], device=device, dtype=dtype)
    grad_output = torch.linspace(-1, 1, z.numel(), device=device, dtype=dtype).reshape(z.shape)
    for dim in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value, back = fn(z, dim=dim), vjp(z, grad_output, dim=dim)
        assert torch.isfinite(value).all(), f"{name}: {value}"
        assert torch.isfinite(back).all(), f"{name}_grad: {back}"
        torch.testing.assert_close(value, ref(z, dim=dim))
        torch.testing.assert_close(back, torch_vjp(ref, z, grad_output, dim))


def test_saturation_values(dtype):
    z = torch.tensor([-1e4, 1e4], dtype=dtype)
    assert torch.equal(A.sigmoid(z), torch.tensor([0.0, 1.0], dtype=dtype))
    assert torch.equal(A.tanh(z), torch.tensor([-1.0, 1.0], dtype=dtype))
    assert torch.equal(A.sigmoid_grad(z), torch.zeros(2, dtype=dtype))
    assert torch.equal(A.log_softmax(z), torch.tensor([-2e4, 0.0], dtype=dtype))


# ---------------------------------------------------------------------------------------------
# laws that hold for every input (hypothesis)
# ---------------------------------------------------------------------------------------------

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
moderate = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
vectors = st.lists(finite, min_size=1, max_size=16).map(
    lambda xs: torch.tensor(xs, dtype=torch.float64)
)
moderate_vectors = st.lists(moderate, min_size=1, max_size=16).map(
    lambda xs: torch.tensor(xs, dtype=torch.float64)
)


@st.composite
def vector_pairs(draw):
    """Two float64 vectors of the same length: scores and an incoming gradient."""
    n = draw(st.integers(1, 12))
    z = draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n))
    g = draw(st.lists(st.floats(-10, 10), min_size=n, max_size=n))
    return torch.tensor(z, dtype=torch.float64), torch.tensor(g, dtype=torch.float64)


def close(actual, expected, tol=1e-12):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


@PROPERTY
@given(vectors)
def test_sigmoid_symmetry(z):
    close(A.sigmoid(-z), 1 - A.sigmoid(z))
    assert torch.equal(A.sigmoid_grad(-z), A.sigmoid_grad(z))
    assert ((A.sigmoid(z) >= 0) & (A.sigmoid(z) <= 1)).all()


@PROPERTY
@given(vectors)
def test_tanh_is_a_rescaled_sigmoid(z):
    close(A.tanh(z), 2 * A.sigmoid(2 * z) - 1)
    close(A.tanh(-z), -A.tanh(z))


@PROPERTY
@given(vectors)
def test_derivatives_in_terms_of_outputs(z):
    s, t = A.sigmoid(z), A.tanh(z)
    close(A.sigmoid_grad(z), s * (1 - s))
    close(A.tanh_grad(z), 1 - t**2)


@PROPERTY
@given(moderate_vectors)
def test_silu_laws(z):
    close(A.silu(z), z * A.sigmoid(z))
    # The form on the course slides: silu' = silu + sigmoid * (1 - silu).
    phi = A.silu(z)
    close(A.silu_grad(z), phi + A.sigmoid(z) * (1 - phi), tol=1e-10)


@PROPERTY
@given(vectors, st.floats(0, 1))
def test_rectifier_laws(z, slope):
    assert torch.equal(A.relu(z) - A.relu(-z), z)
    close(A.leaky_relu(z, slope), A.relu(z) - slope * A.relu(-z))
    assert torch.equal(A.elu(z)[z > 0], z[z > 0])
    assert (A.elu(z, alpha=2.0) >= -2.0).all()


@PROPERTY
@given(vectors, st.floats(-1e3, 1e3))
def test_softmax_is_a_shift_invariant_distribution(z, c):
    s = A.softmax(z)
    assert (s >= 0).all() and (s <= 1).all()
    close(s.sum(), torch.tensor(1.0, dtype=torch.float64))
    close(A.softmax(z + c), s, tol=1e-9)
    close(A.log_softmax(z + c), A.log_softmax(z), tol=1e-9)


@PROPERTY
@given(vectors)
def test_log_softmax_is_log_of_softmax(z):
    close(torch.exp(A.log_softmax(z)), A.softmax(z))
    assert (A.log_softmax(z) <= 0).all()


@PROPERTY
@given(vector_pairs(), st.floats(-10, 10))
def test_softmax_vjps_sum_to_zero(pair, c):
    z, g = pair
    zero = torch.tensor(0.0, dtype=torch.float64)
    close(A.softmax_grad(z, g).sum(), zero, tol=1e-10)
    close(A.log_softmax_grad(z, g).sum(), zero, tol=1e-10)
    # Adding a constant to the incoming gradient changes nothing: the outputs sum to 1.
    close(A.softmax_grad(z, g + c), A.softmax_grad(z, g), tol=1e-10)


def test_log_softmax_grad_of_cross_entropy():
    z = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    onehot = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    close(A.log_softmax_grad(z, -onehot), A.softmax(z) - onehot)


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------

EXPECTED = {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "silu"}
EXPECTED_ALL = EXPECTED | {"softmax", "log_softmax"}


def test_registry_covers_every_activation():
    assert set(ACTIVATIONS) == EXPECTED_ALL
    functions = {act.fn for act in ACTIVATIONS.values()} | {
        act.grad for act in ACTIVATIONS.values()
    }
    public = [getattr(A, name) for name in A.__all__]
    public_functions = {f for f in public if callable(f) and f not in (Activation, get_activation)}
    assert public_functions == functions
    for name, act in ACTIVATIONS.items():
        assert act.name == name
        assert act.fn is getattr(A, name)
        assert act.grad is getattr(A, f"{name}_grad")
        assert act.elementwise == (name in EXPECTED)


def test_registry_gains_and_initializers():
    from nnbolts import init

    torch_names = {"identity": "linear", "softmax": "linear", "log_softmax": "linear"}
    for name, act in ACTIVATIONS.items():
        if name in ("elu", "silu"):  # not known to torch; the course's sqrt(2)
            assert act.gain == math.sqrt(2)
        else:
            assert act.gain == torch.nn.init.calculate_gain(torch_names.get(name, name)), name
        assert callable(getattr(init, f"{act.init}_")), act.init
    assert ACTIVATIONS["tanh"].init == "xavier_uniform"
    assert ACTIVATIONS["sigmoid"].init == "xavier_uniform"
    assert ACTIVATIONS["relu"].init == "kaiming_normal"


def test_registry_derivatives_are_derivatives_of_the_functions():
    # Autograd through our own implementation: each entry's grad really is its fn's derivative.
    g = torch.Generator().manual_seed(7)
    z = torch.randn(3, 50, generator=g, dtype=torch.float64) * 4
    grad_output = torch.randn(3, 50, generator=g, dtype=torch.float64)
    for act in ACTIVATIONS.values():
        if act.elementwise:
            close(act.grad(z), torch_derivative(act.fn, z), tol=1e-10)
        else:
            close(act.grad(z, grad_output), torch_vjp(act.fn, z, grad_output, -1), tol=1e-10)


def test_get_activation():
    assert get_activation("relu") is ACTIVATIONS["relu"]
    assert get_activation("linear") is ACTIVATIONS["identity"]
    assert get_activation("swish") is ACTIVATIONS["silu"]
    with pytest.raises(ValueError, match=r"Unknown activation: 'foo'; expected one of \[.*'relu'"):
        get_activation("foo")
    with pytest.raises(TypeError, match="expected name to be a str, got int"):
        get_activation(3)


def test_activation_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ACTIVATIONS["relu"].gain = 1.0


# ---------------------------------------------------------------------------------------------
# devices, dtypes, bad input
# ---------------------------------------------------------------------------------------------


def test_meta_device(dtype):
    z = torch.empty(3, 4, device="meta", dtype=dtype)
    outputs = {}
    for _, fn, grad, _, _ in ELEMENTWISE:
        outputs[fn.__name__] = fn(z)
        outputs[grad.__name__] = grad(z)
    for _, fn, vjp, _ in SOFTMAXES:
        outputs[fn.__name__] = fn(z, dim=0)
        outputs[vjp.__name__] = vjp(z, torch.empty_like(z), dim=0)
    public = {name for name in A.__all__ if name not in ("ACTIVATIONS", "Activation")}
    assert set(outputs) == public - {"get_activation"}
    for name, out in outputs.items():
        assert out.device.type == "meta", name
        assert out.dtype == dtype, name
        assert out.shape == z.shape, name


def test_other_floating_dtypes():
    z = torch.linspace(-5, 5, 11, dtype=torch.bfloat16)
    for _, fn, grad, _, kwargs in ELEMENTWISE:
        assert fn(z, **kwargs).dtype == torch.bfloat16
        assert grad(z, **kwargs).dtype == torch.bfloat16
    torch.testing.assert_close(A.softmax(z), F.softmax(z, dim=-1), rtol=2e-2, atol=1e-2)


x = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])

# (function, positional arguments, keyword arguments, exception, message regex)
BAD_INPUT = [
    (A.sigmoid, ([1.0, 2.0],), {}, TypeError, "expected z to be a torch.Tensor, got list"),
    (A.relu, (torch.tensor([1, 2]),), {}, TypeError,
     "expected a floating tensor for z, got torch.int64"),
    (A.tanh_grad, (torch.tensor([True]),), {}, TypeError, "floating tensor for z, got torch.bool"),
    (A.softmax, (torch.arange(3),), {}, TypeError, "floating tensor for z, got torch.int64"),
    (A.elu, (x,), {"alpha": -1.0}, ValueError, r"Invalid alpha: -1\.0"),
    (A.elu_grad, (x,), {"alpha": -0.5}, ValueError, r"Invalid alpha: -0\.5"),
    (A.elu, (x,), {"alpha": float("nan")}, ValueError, "Invalid alpha: nan"),
    (A.leaky_relu, (x,), {"negative_slope": "0.1"}, TypeError,
     "Invalid negative_slope: expected a number, got str"),
    (A.leaky_relu_grad, (x,), {"negative_slope": None}, TypeError, "Invalid negative_slope"),
    (A.softmax, (x,), {"dim": 2}, IndexError,
     r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    (A.log_softmax, (x,), {"dim": 1.0}, TypeError, "expected dim to be an int, got float"),
    (A.softmax_grad, (x, torch.ones(3)), {}, ValueError,
     r"grad_output has shape \(3,\) but z has shape \(2, 3\)"),
    (A.log_softmax_grad, (x, x.double()), {}, TypeError,
     "grad_output has dtype torch.float64 but z has dtype torch.float32"),
    (A.log_softmax_grad, (x, [1.0]), {}, TypeError,
     "expected grad_output to be a torch.Tensor, got list"),
    (A.softmax_grad, (x, x), {"dim": -3}, IndexError, "Dimension out of range"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "error", "message"),
    BAD_INPUT,
    ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(BAD_INPUT)],
)
def test_bad_input(fn, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        fn(*args, **kwargs)
