"""nnbolts.init against torch.nn.init: bit-identical draws, fans, gains, LeCun statistics."""

import functools
import math
import warnings

import pytest
import torch
import torch.nn.init as tinit

from nnbolts import init
from nnbolts.activations import ACTIVATIONS, sigmoid_grad
from nnbolts.init import GLOROT_SIGMOID_GAIN

LINEAR_SHAPES = [(5, 3), (64, 32), (1, 7), (300, 2)]
CONV_SHAPES = [(16, 8, 3, 3), (8, 4, 5), (4, 2, 3, 3, 3), (6, 1, 1, 1)]
SHAPES = LINEAR_SHAPES + CONV_SHAPES


def case(ours, theirs, **kwargs):
    label = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return pytest.param(ours, theirs, kwargs, id=f"{ours.__name__}({label})")


# Every random initializer torch has, with a spread of options; lecun_* against the torch call
# they are documented to equal.
RANDOM_CASES = [
    case(init.uniform_, tinit.uniform_),
    case(init.uniform_, tinit.uniform_, a=-0.3, b=0.7),
    case(init.normal_, tinit.normal_),
    case(init.normal_, tinit.normal_, mean=0.5, std=0.02),
    case(init.xavier_uniform_, tinit.xavier_uniform_),
    case(init.xavier_uniform_, tinit.xavier_uniform_, gain=5 / 3),
    case(init.xavier_uniform_, tinit.xavier_uniform_, gain=GLOROT_SIGMOID_GAIN),
    case(init.xavier_normal_, tinit.xavier_normal_),
    case(init.xavier_normal_, tinit.xavier_normal_, gain=math.sqrt(2)),
    case(init.xavier_normal_, tinit.xavier_normal_, gain=GLOROT_SIGMOID_GAIN),
    *[
        case(ours, theirs, a=a, mode=mode, nonlinearity=nonlinearity)
        for ours, theirs in [
            (init.kaiming_uniform_, tinit.kaiming_uniform_),
            (init.kaiming_normal_, tinit.kaiming_normal_),
        ]
        for mode in ("fan_in", "fan_out")
        for nonlinearity, a in [
            ("leaky_relu", 0),
            ("leaky_relu", 0.2),
            ("leaky_relu", math.sqrt(5)),  # what torch.nn.Linear uses for its weights
            ("relu", 0),
            ("tanh", 0),
            ("sigmoid", 0),
            ("selu", 0),
            ("linear", 0),
            ("conv2d", 0),
        ]
    ],
    case(init.kaiming_uniform_, tinit.kaiming_uniform_),
    case(init.kaiming_normal_, tinit.kaiming_normal_, mode="FAN_OUT"),
    case(init.lecun_uniform_, functools.partial(tinit.kaiming_uniform_, nonlinearity="linear")),
    case(init.lecun_normal_, functools.partial(tinit.kaiming_normal_, nonlinearity="linear")),
]


def generators(device, seed):
    return (torch.Generator(device=device).manual_seed(seed) for _ in range(2))


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), RANDOM_CASES)
def test_bit_identical_to_torch(ours, theirs, kwargs, device, dtype):
    for shape in SHAPES:
        for seed in (0, 1):
            mine, ref = generators(device, seed)
            w = torch.empty(shape, device=device, dtype=dtype)
            expected = theirs(torch.empty_like(w), **kwargs, generator=ref)
            assert ours(w, **kwargs, generator=mine) is w
            assert torch.equal(w, expected), f"shape {shape}, seed {seed}"
            # The same number of draws was taken: the generators are still in step.
            assert torch.equal(mine.get_state(), ref.get_state()), f"shape {shape}"


@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [case(init.zeros_, tinit.zeros_), case(init.constant_, tinit.constant_, val=-0.25)],
)
def test_constant_fills_match_torch(ours, theirs, kwargs, device, dtype):
    for shape in SHAPES:
        w = torch.randn(shape, device=device, dtype=dtype)
        assert ours(w, **kwargs) is w
        assert torch.equal(w, theirs(torch.empty_like(w), **kwargs))


def test_default_generator_matches_torch():
    w = torch.empty(32, 16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        init.kaiming_uniform_(w, nonlinearity="relu")
        torch.manual_seed(3)
        assert torch.equal(w, tinit.kaiming_uniform_(torch.empty(32, 16), nonlinearity="relu"))


def test_works_on_parameters_without_recording_history():
    w = torch.nn.Parameter(torch.empty(8, 4))
    init.xavier_normal_(w)
    init.kaiming_uniform_(w)
    init.zeros_(w)
    assert w.requires_grad and w.grad_fn is None and w.is_leaf


def test_zero_element_tensors_are_left_alone():
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
                   init.kaiming_normal_, init.lecun_uniform_, init.lecun_normal_):  # fmt: skip
            for shape in [(0, 5), (5, 0), (0, 0), (4, 0, 3)]:
                w = torch.empty(shape)
                assert fn(w, generator=g) is w
    assert torch.equal(g.get_state(), state)


# ---------------------------------------------------------------------------------------------
# fans and gains
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    w = torch.empty(shape, device="meta")
    assert init.fan_in_and_fan_out(w) == tinit._calculate_fan_in_and_fan_out(w)


def test_fans_by_hand():
    assert init.fan_in_and_fan_out(torch.empty(64, 32)) == (32, 64)
    assert init.fan_in_and_fan_out(torch.empty(16, 3, 5, 5)) == (3 * 25, 16 * 25)
    assert init.fan_in_and_fan_out(torch.empty(8, 4, 2, 3, 5)) == (4 * 30, 8 * 30)


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [
        ("linear", None),
        ("conv1d", None),
        ("conv2d", None),
        ("conv3d", None),
        ("conv_transpose1d", None),
        ("conv_transpose2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0),
        ("leaky_relu", 0.2),
        ("leaky_relu", 3),
        ("leaky_relu", -0.5),
        ("selu", None),
        ("tanh", 0.3),  # param is ignored except for leaky_relu, as in torch
    ],
)
def test_gains_equal_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == tinit.calculate_gain(nonlinearity, param)


def test_gain_extensions():
    for name in ("elu", "silu"):
        assert init.calculate_gain(name) == math.sqrt(2.0)
        with pytest.raises(ValueError, match=f"Unsupported nonlinearity {name}"):
            tinit.calculate_gain(name)


def test_unknown_nonlinearity_worded_like_torch():
    for fn in (init.calculate_gain, tinit.calculate_gain):
        with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
            fn("foo")


# ---------------------------------------------------------------------------------------------
# the course's sigmoid rule
# ---------------------------------------------------------------------------------------------


def test_sigmoid_gain_torch_vs_course():
    assert init.calculate_gain("sigmoid") == tinit.calculate_gain("sigmoid") == 1
    # The course's 4 is the inverse of sigmoid's slope at 0: sigmoid(z) ~ 1/2 + z/4.
    assert GLOROT_SIGMOID_GAIN == 4.0
    assert GLOROT_SIGMOID_GAIN == 1 / sigmoid_grad(torch.zeros((), dtype=torch.float64))


def test_sigmoid_glorot_bound_is_four_times_tanh_one(device):
    fan_out, fan_in = 400, 300
    tanh_bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot's bound, gain 1
    mine, ref = generators(device, 11)
    w4 = init.xavier_uniform_(
        torch.empty(fan_out, fan_in, device=device, dtype=torch.float64),
        gain=GLOROT_SIGMOID_GAIN,
        generator=mine,
    )
    w1 = init.xavier_uniform_(
        torch.empty(fan_out, fan_in, device=device, dtype=torch.float64), generator=ref
    )
    n = w4.numel()
    assert w4.abs().max() <= 4 * tanh_bound
    # With n draws, P(max |w| < bound * (1 - 30/n)) = (1 - 30/n)^n < e^-30.
    assert w4.abs().max() >= 4 * tanh_bound * (1 - 30 / n)
    # Same draws, bound scaled by a power of two: every rounding scales with it, so exactly 4x.
    assert torch.equal(w4, 4 * w1)


# ---------------------------------------------------------------------------------------------
# LeCun: no torch counterpart by name, so test the distribution
# ---------------------------------------------------------------------------------------------

# A test at 6 standard errors fails by chance with probability ~2e-9; the generators are
# seeded, so a given run is deterministic anyway.
Z = 6.0
KS_ALPHA = 1e-9


def ks_statistic(sample: torch.Tensor, cdf) -> torch.Tensor:
    """Kolmogorov-Smirnov distance between the empirical CDF of ``sample`` and ``cdf``."""
    x, _ = sample.flatten().double().sort()
    n = x.numel()
    f = cdf(x)
    i = torch.arange(1, n + 1, device=x.device, dtype=torch.float64)
    return torch.maximum((i / n - f).max(), (f - (i - 1) / n).max())


def ks_threshold(n: int) -> float:
    # Dvoretzky-Kiefer-Wolfowitz: P(D_n > t) <= 2 exp(-2 n t^2).
    return math.sqrt(math.log(2 / KS_ALPHA) / (2 * n))


@pytest.mark.parametrize("seed", [0, 1])
def test_lecun_uniform_distribution(seed, device, dtype):
    fan_out, fan_in = 500, 400
    g = torch.Generator(device=device).manual_seed(seed)
    w = init.lecun_uniform_(torch.empty(fan_out, fan_in, device=device, dtype=dtype), generator=g)
    x, n = w.double(), w.numel()
    bound = math.sqrt(3 / fan_in)
    var = bound**2 / 3  # = 1 / fan_in
    assert (x >= -bound).all() and (x <= bound).all()
    assert x.abs().max() >= bound * (1 - 30 / n)
    assert abs(x.mean()) <= Z * math.sqrt(var / n)
    # Var of the sample variance of a uniform: (mu4 - sigma^4) / n = (b^4/5 - b^4/9) / n.
    assert abs(x.var() - var) <= Z * math.sqrt((bound**4 / 5 - bound**4 / 9) / n)
    cdf = lambda t: ((t + bound) / (2 * bound)).clamp(0, 1)
    assert ks_statistic(x, cdf) <= ks_threshold(n)


@pytest.mark.parametrize("seed", [0, 1])
def test_lecun_normal_distribution(seed, device, dtype):
    fan_out, fan_in = 500, 400
    g = torch.Generator(device=device).manual_seed(seed)
    w = init.lecun_normal_(torch.empty(fan_out, fan_in, device=device, dtype=dtype), generator=g)
    x, n = w.double(), w.numel()
    std = math.sqrt(1 / fan_in)
    assert abs(x.mean()) <= Z * std / math.sqrt(n)
    # Var of the sample variance of a normal: 2 sigma^4 / n.
    assert abs(x.var() - std**2) <= Z * math.sqrt(2 / n) * std**2
    assert ks_statistic(x, lambda t: torch.special.ndtr(t / std)) <= ks_threshold(n)
    # Not truncated: a normal sample this large has values beyond 3 std (P(none) ~ e^-540).
    assert (x.abs() > 3 * std).any()


# ---------------------------------------------------------------------------------------------
# the book's table
# ---------------------------------------------------------------------------------------------


def evaluate(formula: str, fan_in: int, fan_out: int) -> float:
    expression = formula.replace("√", "math.sqrt").replace("·", "*")
    return eval(expression, {"math": math, "fan_in": fan_in, "fan_out": fan_out})


def test_init_bounds_table_follows_the_initializers():
    rows = init.init_bounds_table()
    by_name = {row["activation"]: row for row in rows}
    assert set(by_name) == set(ACTIVATIONS) | {"sigmoid (Bengio 2012, ×4)"}
    assert by_name["sigmoid (Bengio 2012, ×4)"]["gain"] == GLOROT_SIGMOID_GAIN
    assert by_name["sigmoid (Bengio 2012, ×4)"]["uniform_bound"] == "4 · √(6 / (fan_in + fan_out))"
    assert by_name["relu"]["init"] == "kaiming_normal_"

    fan_out, fan_in = 400, 300
    for row in rows:
        name = row["activation"]
        if name in ACTIVATIONS:
            assert row["gain"] == ACTIVATIONS[name].gain
        # Draw with the row's initializer; its bound and std must be what the text says
        # (to the 4 significant digits the gain is written with).
        uniform = getattr(init, row["init"].replace("normal", "uniform"))
        normal = getattr(init, row["init"].replace("uniform", "normal"))
        if row["init"].startswith("xavier"):
            options = {"gain": row["gain"]}
        else:  # kaiming: the activation's name, and leaky_relu's default slope as a
            options = {"nonlinearity": name, "a": 0.01 if name == "leaky_relu" else 0}
        options["generator"] = torch.Generator().manual_seed(0)
        w_uniform = uniform(torch.empty(fan_out, fan_in, dtype=torch.float64), **options)
        w_normal = normal(torch.empty(fan_out, fan_in, dtype=torch.float64), **options)
        bound = evaluate(row["uniform_bound"], fan_in, fan_out)
        std = evaluate(row["std"], fan_in, fan_out)
        n = w_uniform.numel()
        assert w_uniform.abs().max() <= bound * (1 + 1e-3), name
        assert w_uniform.abs().max() >= bound * (1 - 1e-3), name
        assert abs(w_normal.std() - std) <= Z * math.sqrt(1 / (2 * n)) * std + 1e-3 * std, name
        assert abs(bound - math.sqrt(3) * std) <= 1e-12, name


# ---------------------------------------------------------------------------------------------
# meta device, bad input
# ---------------------------------------------------------------------------------------------

ALL_INITIALIZERS = [
    (init.zeros_, {}),
    (init.constant_, {"val": 0.5}),
    (init.normal_, {}),
    (init.uniform_, {}),
    (init.xavier_uniform_, {}),
    (init.xavier_normal_, {}),
    (init.kaiming_uniform_, {}),
    (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}),
    (init.lecun_uniform_, {}),
    (init.lecun_normal_, {}),
]


def test_every_initializer_is_tested_on_meta():
    tested = {fn.__name__ for fn, _ in ALL_INITIALIZERS}
    assert tested == {name for name in init.__all__ if name.endswith("_")}


@pytest.mark.parametrize("with_generator", [False, True])
def test_meta_device(dtype, with_generator):
    for fn, kwargs in ALL_INITIALIZERS:
        if with_generator and fn not in (init.zeros_, init.constant_):
            kwargs = {**kwargs, "generator": torch.Generator().manual_seed(0)}
        w = torch.empty(8, 4, 3, 3, device="meta", dtype=dtype)
        assert fn(w, **kwargs) is w
        assert w.device.type == "meta" and w.dtype == dtype, fn.__name__
    assert init.fan_in_and_fan_out(torch.empty(8, 4, 3, 3, device="meta")) == (36, 72)


w2 = torch.empty(4, 3)
ints = torch.zeros(4, 3, dtype=torch.int64)
FEWER_THAN_2 = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"

# (callable, keyword arguments, exception, message regex)
BAD_INPUT = [
    (init.uniform_, {"tensor": [1.0, 2.0]}, TypeError,
     "expected tensor to be a torch.Tensor, got list"),
    (init.zeros_, {"tensor": 3.0}, TypeError, "expected tensor to be a torch.Tensor, got float"),
    (init.xavier_uniform_, {"tensor": ints}, TypeError,
     "expected a floating tensor for tensor, got torch.int64"),
    (init.constant_, {"tensor": ints, "val": 1}, TypeError,
     "floating tensor for tensor, got torch.int64"),
    (init.lecun_normal_, {"tensor": ints}, TypeError,
     "floating tensor for tensor, got torch.int64"),
    (init.normal_, {"tensor": w2, "std": -1.0}, ValueError, r"Invalid std: -1\.0"),
    (init.normal_, {"tensor": w2, "mean": "0"}, TypeError,
     "Invalid mean: expected a number, got str"),
    (init.uniform_, {"tensor": w2, "a": 1.0, "b": 0.0}, ValueError,
     r"Invalid uniform range: a=1\.0 > b=0\.0"),
    (init.uniform_, {"tensor": w2, "b": float("inf")}, ValueError, "Invalid b: inf"),
    (init.constant_, {"tensor": w2, "val": float("nan")}, ValueError, "Invalid val: nan"),
    (init.xavier_normal_, {"tensor": w2, "gain": -1.0}, ValueError, r"Invalid gain: -1\.0"),
    (init.xavier_uniform_, {"tensor": torch.empty(5)}, ValueError, FEWER_THAN_2),
    (init.fan_in_and_fan_out, {"tensor": torch.empty(5)}, ValueError, FEWER_THAN_2),
    (init.fan_in_and_fan_out, {"tensor": torch.tensor(1.0)}, ValueError, FEWER_THAN_2),
    (init.lecun_uniform_, {"tensor": torch.empty(5)}, ValueError, FEWER_THAN_2),
    (init.kaiming_uniform_, {"tensor": w2, "mode": "fan_avg"}, ValueError,
     r"Mode fan_avg not supported, please use one of \['fan_in', 'fan_out'\]"),
    (init.kaiming_normal_, {"tensor": w2, "mode": None}, ValueError, "Mode None not supported"),
    (init.kaiming_normal_, {"tensor": w2, "nonlinearity": "foo"}, ValueError,
     "Unsupported nonlinearity foo"),
    (init.kaiming_uniform_, {"tensor": w2, "a": "x"}, TypeError,
     "Invalid a: expected a number, got str"),
    (init.calculate_gain, {"nonlinearity": "leaky_relu", "param": "0.1"}, ValueError,
     "negative_slope 0.1 not a valid number"),
    (init.calculate_gain, {"nonlinearity": "leaky_relu", "param": True}, ValueError,
     "negative_slope True not a valid number"),
    (init.calculate_gain, {"nonlinearity": "leaky_relu", "param": float("nan")}, ValueError,
     "negative_slope nan not a valid number"),
    (init.calculate_gain, {"nonlinearity": "swish"}, ValueError, "Unsupported nonlinearity swish"),
    (init.normal_, {"tensor": w2, "generator": 42}, TypeError,
     "expected generator to be a torch.Generator or None, got int"),
    (init.kaiming_uniform_, {"tensor": w2, "generator": "seed"}, TypeError,
     "expected generator to be a torch.Generator or None, got str"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fn", "kwargs", "error", "message"),
    BAD_INPUT,
    ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(BAD_INPUT)],
)
def test_bad_input(fn, kwargs, error, message):
    with pytest.raises(error, match=message):
        fn(**kwargs)


def test_generator_on_another_device():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device type")
    g = torch.Generator(device="cpu")
    with pytest.raises(ValueError, match="generator is on cpu but tensor is on cuda"):
        init.xavier_uniform_(torch.empty(3, 4, device="cuda"), generator=g)
