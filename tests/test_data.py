"""Tests of nnbolts.data: mini-batches, sharding, splits, toy data sets and the packaged digits."""

from __future__ import annotations

import math
import socket

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnbolts import data
from nnbolts.data import (
    load_digits,
    make_blobs,
    make_circles,
    make_moons,
    make_regression_1d,
    make_spirals,
    make_xor,
    minibatches,
    num_batches,
    sine_wave,
    train_val_test_split,
)


def seeded(seed: int = 0, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def indexed(n: int, device="cpu", features: int = 3):
    """A data set whose row i is [i, i, ...] with label i, so batches reveal their sample ids."""
    y = torch.arange(n, device=device)
    X = y.to(torch.float64).unsqueeze(1).repeat(1, features)
    return X, y


def labels_of(batches) -> list[list[int]]:
    return [yb.tolist() for _, yb in batches]


# ---------------------------------------------------------------------------------------------
# minibatches: coverage, order, determinism
# ---------------------------------------------------------------------------------------------

N = 23


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "ordered"])
@pytest.mark.parametrize("drop_last", [False, True], ids=["keep_last", "drop_last"])
@pytest.mark.parametrize("batch_size", [None, 1, 7, N], ids=["full", "online", "b7", "bN"])
def test_every_sample_once_per_epoch(shuffle, drop_last, batch_size):
    X, y = indexed(N)
    batches = list(minibatches(X, y, batch_size, shuffle=shuffle, drop_last=drop_last,
                               generator=seeded(3)))
    assert len(batches) == num_batches(N, batch_size, drop_last)
    seen = torch.cat([yb for _, yb in batches])
    for xb, yb in batches:
        # rows of X and y travel together
        assert torch.equal(xb[:, 0].long(), yb)
        assert xb.shape[1:] == X.shape[1:]
    if batch_size is None:
        sizes = [N]
    elif drop_last:
        sizes = [batch_size] * (N // batch_size)
    else:
        sizes = [batch_size] * (N // batch_size) + ([N % batch_size] if N % batch_size else [])
    assert [len(yb) for _, yb in batches] == sizes
    # no repeats; without drop_last, every sample
    assert len(set(seen.tolist())) == len(seen) == sum(sizes)
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(N))


def test_online_and_full_batch_are_the_two_extremes():
    X, y = indexed(5)
    assert [len(yb) for _, yb in minibatches(X, y, 1)] == [1] * 5
    full = list(minibatches(X, y, None, shuffle=False))
    assert len(full) == 1 and torch.equal(full[0][0], X) and torch.equal(full[0][1], y)


def test_unshuffled_batches_are_consecutive_views():
    X, y = indexed(10)
    batches = list(minibatches(X, y, 4, shuffle=False))
    assert labels_of(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    for xb, yb in batches:
        assert xb.untyped_storage().data_ptr() == X.untyped_storage().data_ptr()
        assert yb.untyped_storage().data_ptr() == y.untyped_storage().data_ptr()


def test_shuffled_order_is_torch_randperm_of_the_generator():
    X, y = indexed(N)
    order = torch.cat([yb for _, yb in minibatches(X, y, 5, generator=seeded(7))])
    assert torch.equal(order, torch.randperm(N, generator=seeded(7)))


def test_same_seed_same_order_different_seed_different_order():
    X, y = indexed(50)
    first = labels_of(minibatches(X, y, 8, generator=seeded(1)))
    again = labels_of(minibatches(X, y, 8, generator=seeded(1)))
    other = labels_of(minibatches(X, y, 8, generator=seeded(2)))
    assert first == again
    assert first != other


def test_each_epoch_draws_a_fresh_permutation():
    X, y = indexed(50)
    g = seeded(0)
    epochs = [labels_of(minibatches(X, y, 10, generator=g)) for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    for epoch in epochs:
        assert sorted(sum(epoch, [])) == list(range(50))


def test_default_generator_is_used_when_none_is_given():
    X, y = indexed(30)
    torch.manual_seed(11)
    first = labels_of(minibatches(X, y, 4))
    torch.manual_seed(11)
    assert labels_of(minibatches(X, y, 4)) == first


def test_arguments_are_checked_at_call_time_not_at_first_batch():
    X, y = indexed(5)
    with pytest.raises(ValueError, match="batch_size"):
        minibatches(X, y, 0)  # no iteration needed


def test_multidimensional_samples_keep_their_shape():
    X = torch.randn(12, 3, 4, 4)
    y = torch.randn(12, 2)
    for xb, yb in minibatches(X, y, 5, generator=seeded()):
        assert xb.shape[1:] == (3, 4, 4) and yb.shape[1:] == (2,)


# ---------------------------------------------------------------------------------------------
# data-parallel sharding
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    b=st.integers(1, 9),
    k=st.integers(1, 4),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_workers_together_make_the_single_process_batch(n, b, k, shuffle, drop_last, seed):
    assume(not (drop_last and n < b * k))  # rejected with an error, tested separately
    X, y = indexed(n, features=1)
    single = labels_of(
        minibatches(X, y, b * k, shuffle=shuffle, drop_last=drop_last, generator=seeded(seed))
    )
    workers = [
        labels_of(
            minibatches(X, y, b, shuffle=shuffle, drop_last=drop_last, generator=seeded(seed),
                        rank=r, world_size=k)
        )
        for r in range(k)
    ]
    assert all(len(w) == len(single) == num_batches(n, b, drop_last, k) for w in workers)
    for step, batch in enumerate(single):
        assert sum((w[step] for w in workers), []) == batch
        sizes = [len(w[step]) for w in workers]
        assert max(sizes) - min(sizes) <= 1
        if len(batch) == b * k:
            assert sizes == [b] * k


def test_sharding_full_batch_splits_all_rows_evenly():
    X, y = indexed(10)
    shards = [labels_of(minibatches(X, y, None, shuffle=False, rank=r, world_size=3))
              for r in range(3)]
    assert shards == [[[0, 1, 2, 3]], [[4, 5, 6]], [[7, 8, 9]]]


def test_averaged_worker_gradients_equal_the_big_batch_gradient():
    # N divisible by k*b: k workers with batch b reproduce one process with batch k*b.
    torch.manual_seed(0)
    n, b, k = 48, 4, 3
    X = torch.randn(n, 5, dtype=torch.float64)
    y = torch.randn(n, dtype=torch.float64)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def grad(xb, yb):
        (g,) = torch.autograd.grad(((xb @ w - yb) ** 2).mean(), w)
        return g

    single = [grad(xb, yb) for xb, yb in minibatches(X, y, b * k, generator=seeded(5))]
    per_worker = [
        [grad(xb, yb) for xb, yb in minibatches(X, y, b, generator=seeded(5), rank=r,
                                                world_size=k)]
        for r in range(k)
    ]
    for step, g in enumerate(single):
        averaged = sum(worker[step] for worker in per_worker) / k
        torch.testing.assert_close(averaged, g, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("gen_device", ["cpu", "same", None])
def test_batches_stay_on_the_device_of_x(device, shuffle, gen_device):
    X, y = indexed(20, device=device)
    if gen_device is None:
        generator = None
    else:
        generator = seeded(0, "cpu" if gen_device == "cpu" or device.type == "mps" else device)
    batches = list(minibatches(X, y, 6, shuffle=shuffle, generator=generator))
    for xb, yb in batches:
        assert xb.device == X.device and yb.device == X.device
        assert xb.dtype == X.dtype and yb.dtype == y.dtype
    assert sorted(torch.cat([yb for _, yb in batches]).tolist()) == list(range(20))


def test_cpu_generator_gives_the_same_order_on_every_device(device):
    X, y = indexed(40, device=device)
    order = torch.cat([yb for _, yb in minibatches(X, y, 6, generator=seeded(9))])
    assert order.tolist() == torch.randperm(40, generator=seeded(9)).tolist()


class _RecordDevices(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the device of every tensor produced by a torch operation."""

    def __init__(self):
        super().__init__()
        self.devices = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.devices.add(value.device.type)
        return out


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("world_size", [1, 3])
def test_meta_tensors_make_no_hidden_cpu_tensors(shuffle, world_size):
    X = torch.empty(100, 8, device="meta")
    y = torch.empty(100, dtype=torch.int64, device="meta")
    with _RecordDevices() as record:
        batches = list(minibatches(X, y, 16, shuffle=shuffle, rank=world_size - 1,
                                   world_size=world_size))
    assert len(batches) == num_batches(100, 16, world_size=world_size)
    assert all(xb.is_meta and yb.is_meta for xb, yb in batches)
    assert record.devices == {"meta"}


# ---------------------------------------------------------------------------------------------
# num_batches and bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        ((60000, 64), 938),
        ((60000, 64, True), 937),
        ((10, None), 1),
        ((0, None), 0),
        ((0, 5), 0),
        ((10, 1), 10),
        ((10, 20), 1),
        ((10, 20, True), 0),
        ((100, 10, False, 4), 3),
        ((100, 10, True, 4), 2),
    ],
)
def test_num_batches(args, expected):
    assert num_batches(*args) == expected


X10, Y10 = indexed(10)


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (([[1.0]], Y10[:1], 2), {}, TypeError, r"X to be a torch\.Tensor, got list"),
        ((X10, [1, 2], 2), {}, TypeError, r"y to be a torch\.Tensor, got list"),
        ((torch.tensor(1.0), Y10, 2), {}, ValueError, "X must hold one sample per row"),
        ((X10, Y10[:9], 2), {}, ValueError, "X has 10 samples but y has 9"),
        ((X10[:0], Y10[:0], 2), {}, ValueError, "empty dataset"),
        ((X10, Y10, 0), {}, ValueError, r"Invalid batch_size: 0"),
        ((X10, Y10, -3), {}, ValueError, r"Invalid batch_size: -3"),
        ((X10, Y10, 2.5), {}, TypeError, r"batch_size to be an int, got float: 2\.5"),
        ((X10, Y10, True), {}, TypeError, r"batch_size to be an int, got bool"),
        ((X10, Y10, 11), {"drop_last": True}, ValueError,
         r"Invalid batch_size: 11 .*drop_last=True.*X has 10"),
        ((X10, Y10, 4), {"drop_last": True, "world_size": 3}, ValueError,
         r"needs at least 12 samples"),
        ((X10, Y10, 2), {"rank": 2, "world_size": 2}, ValueError, r"Invalid rank: 2"),
        ((X10, Y10, 2), {"rank": -1}, ValueError, r"Invalid rank: -1"),
        ((X10, Y10, 2), {"world_size": 0}, ValueError, r"Invalid world_size: 0"),
        ((X10, Y10, 2), {"shuffle": "yes"}, TypeError, r"shuffle to be a bool"),
        ((X10, Y10, 2), {"drop_last": 1}, TypeError, r"drop_last to be a bool"),
        ((X10, Y10, 2), {"generator": 0}, TypeError, r"generator to be a torch\.Generator"),
        ((X10, torch.empty(10, device="meta"), 2), {}, ValueError,
         r"X is on cpu but y is on meta"),
    ],
)
def test_minibatches_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        minibatches(*args, **kwargs)


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((-1, 4), ValueError, r"Invalid n: -1"),
        ((10, 0), ValueError, r"Invalid batch_size: 0"),
        ((10, 4, False, 0), ValueError, r"Invalid world_size: 0"),
        ((10.0, 4), TypeError, r"n to be an int"),
    ],
)
def test_num_batches_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        num_batches(*args)


# ---------------------------------------------------------------------------------------------
# train / validation / test split
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stratify", [False, True])
@pytest.mark.parametrize(
    "n, fractions", [(100, (0.7, 0.15, 0.15)), (37, (0.5, 0.25, 0.25)), (10, (1.0, 0.0, 0.0))]
)
def test_split_is_disjoint_and_covering(n, fractions, stratify):
    X, ids = indexed(n)
    y = ids if not stratify else ids % 3
    parts = train_val_test_split(X, y, fractions, generator=seeded(4), stratify=stratify)
    rows = [xp[:, 0].long().tolist() for xp, _ in parts]
    union = sum(rows, [])
    assert sorted(union) == list(range(n))  # covering, and no row twice
    for (xp, yp), r in zip(parts, rows):
        assert torch.equal(yp, y[r])  # labels travel with their rows
        assert xp.shape[1:] == X.shape[1:]
    if not stratify:
        n_train = round(fractions[0] * n)
        n_train_val = round((fractions[0] + fractions[1]) * n)
        assert [len(r) for r in rows] == [n_train, n_train_val - n_train, n - n_train_val]


def test_split_is_seeded_and_shuffled():
    X, y = indexed(60)
    a = train_val_test_split(X, y, generator=seeded(1))
    b = train_val_test_split(X, y, generator=seeded(1))
    c = train_val_test_split(X, y, generator=seeded(2))
    assert all(torch.equal(pa[1], pb[1]) for pa, pb in zip(a, b))
    assert not torch.equal(a[0][1], c[0][1])
    assert a[0][1].tolist() != sorted(a[0][1].tolist())


def test_stratified_split_keeps_class_proportions():
    y = torch.cat([torch.zeros(80), torch.ones(20)]).long()
    X = torch.randn(100, 2)
    parts = train_val_test_split(X, y, (0.6, 0.2, 0.2), generator=seeded(0), stratify=True)
    counts = [yp.bincount(minlength=2).tolist() for _, yp in parts]
    assert counts == [[48, 12], [16, 4], [16, 4]]


def test_split_on_device(device):
    X, y = indexed(30, device=device)
    for xp, yp in train_val_test_split(X, y, generator=seeded(0), stratify=False):
        assert xp.device == X.device and yp.device == X.device


@pytest.mark.parametrize(
    "fractions, kwargs, error, message",
    [
        ((0.5, 0.5), {}, ValueError, "three numbers"),
        (0.7, {}, ValueError, "three numbers"),
        ((0.8, 0.3, -0.1), {}, ValueError, r"Invalid fraction: -0\.1"),
        ((0.5, 0.2, 0.2), {}, ValueError, r"sum to 0\.9"),
        ((0.5, "a", 0.5), {}, TypeError, "Invalid fraction: expected a number"),
        ((0.7, 0.15, 0.15), {"stratify": True, "y": torch.randn(10)}, TypeError,
         "1-D integer tensor of class labels"),
        ((0.7, 0.15, 0.15), {"stratify": 1}, TypeError, "stratify to be a bool"),
    ],
)
def test_split_bad_input(fractions, kwargs, error, message):
    X, y = indexed(10)
    y = kwargs.pop("y", y)
    with pytest.raises(error, match=message):
        train_val_test_split(X, y, fractions, **kwargs)


# ---------------------------------------------------------------------------------------------
# toy data sets made in code
# ---------------------------------------------------------------------------------------------

CLASSIFICATION = {
    "moons": (make_moons, {}, 2),
    "circles": (make_circles, {}, 2),
    "spirals": (make_spirals, {"n_classes": 4}, 4),
    "xor": (make_xor, {}, 2),
    "blobs": (make_blobs, {"centers": 5, "n_features": 3}, 5),
}


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_sets_shape_dtype_and_balance(name, dtype, device):
    make, kwargs, n_classes = CLASSIFICATION[name]
    X, y = make(101, **kwargs, generator=seeded(0), dtype=dtype, device=device)
    assert X.dtype == dtype and X.device.type == device.type
    assert y.dtype == torch.int64 and y.device.type == device.type
    assert X.shape == (101, kwargs.get("n_features", 2)) and y.shape == (101,)
    counts = y.bincount(minlength=n_classes)
    assert len(counts) == n_classes and counts.max() - counts.min() <= 1
    assert torch.isfinite(X).all()


@pytest.mark.parametrize("name", [*CLASSIFICATION, "regression_1d"])
def test_toy_sets_are_deterministic_given_the_generator(name, device):
    make, kwargs, _ = CLASSIFICATION.get(name, (make_regression_1d, {}, 0))
    a = make(50, **kwargs, generator=seeded(3))
    b = make(50, **kwargs, generator=seeded(3))
    c = make(50, **kwargs, generator=seeded(4))
    # a CPU generator gives the same points on every device and in every float dtype
    d = make(50, **kwargs, generator=seeded(3), device=device, dtype=torch.float64)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(d[0].cpu().float(), a[0])
    assert torch.equal(d[1].cpu().to(a[1].dtype), a[1])


def test_moons_without_noise_lie_on_their_half_circles():
    X, y = make_moons(200, noise=0.0, generator=seeded(0))
    upper, lower = X[y == 0], X[y == 1]
    torch.testing.assert_close(upper.norm(dim=1), torch.ones(len(upper)))
    assert (upper[:, 1] >= 0).all()
    centre = torch.tensor([1.0, 0.5])
    torch.testing.assert_close((lower - centre).norm(dim=1), torch.ones(len(lower)))
    assert (lower[:, 1] <= 0.5).all()


def test_circles_without_noise_have_the_two_radii():
    X, y = make_circles(100, noise=0.0, factor=0.3, generator=seeded(0))
    torch.testing.assert_close(X.norm(dim=1), torch.where(y == 0, 1.0, 0.3))


def test_spirals_without_noise_follow_their_arms():
    X, y = make_spirals(90, n_classes=3, noise=0.0, turns=0.5, generator=seeded(0))
    radius = X.double().norm(dim=1)
    assert (radius <= 1.0 + 1e-6).all()
    # angle = 2π (turns · radius + k / 3) modulo 2π
    angle = torch.atan2(X[:, 1].double(), X[:, 0].double())
    expected = 2 * math.pi * (0.5 * radius + y.double() / 3)
    diff = torch.remainder(angle - expected + math.pi, 2 * math.pi) - math.pi
    assert diff.abs().max() < 1e-5


def test_xor_labels_and_corners():
    X, y = make_xor(400, noise=0.0, generator=seeded(0))
    assert set(map(tuple, X.tolist())) == {(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)}
    assert torch.equal(y, (X[:, 0] * X[:, 1] < 0).long())
    X, y = make_xor(400, noise=0.1, generator=seeded(0))
    assert (y == (X[:, 0] * X[:, 1] < 0).long()).float().mean() > 0.99


def test_blobs_with_given_centres_and_spreads():
    centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]
    X, y = make_blobs(3000, centers=centres, std=[0.0, 1.0, 2.0], generator=seeded(0))
    torch.testing.assert_close(X[y == 0], torch.zeros(1000, 2))
    for k, s in ((1, 1.0), (2, 2.0)):
        cloud = X[y == k]
        torch.testing.assert_close(cloud.mean(0), torch.tensor(centres[k]), atol=0.2, rtol=0)
        assert abs(cloud.std(0).mean().item() - s) < 0.15 * s


def test_random_blob_centres_lie_in_the_box():
    X, y = make_blobs(500, centers=4, std=0.0, generator=seeded(1))
    means = torch.stack([X[y == k].mean(0) for k in range(4)])
    assert (means.abs() <= 5).all() and len(torch.unique(means, dim=0)) == 4


def test_regression_1d_follows_its_target(dtype, device):
    X, y = make_regression_1d(500, noise=0.1, x_range=(-1.0, 2.0), generator=seeded(0),
                              dtype=dtype, device=device)
    assert X.shape == y.shape == (500, 1)
    assert X.dtype == y.dtype == dtype and X.device.type == y.device.type == device.type
    assert X.min() >= -1.0 and X.max() <= 2.0
    residual = y - sine_wave(X)
    assert abs(residual.std().item() - 0.1) < 0.02 and abs(residual.mean().item()) < 0.02
    X, y = make_regression_1d(5, noise=0.0, target=lambda x: 3 * x + 1, generator=seeded(0))
    torch.testing.assert_close(y, 3 * X + 1)


@pytest.mark.parametrize(
    "make, kwargs, error, message",
    [
        (make_moons, {"n_samples": 0}, ValueError, r"Invalid n_samples: 0"),
        (make_moons, {"n_samples": 10.5}, TypeError, r"n_samples to be an int"),
        (make_moons, {"noise": -0.1}, ValueError, r"Invalid noise: -0\.1"),
        (make_moons, {"dtype": torch.int64}, TypeError, r"floating torch\.dtype"),
        (make_moons, {"generator": 1}, TypeError, r"generator to be a torch\.Generator"),
        (make_circles, {"factor": 1.0}, ValueError, r"Invalid factor: 1\.0"),
        (make_spirals, {"n_classes": 0}, ValueError, r"Invalid n_classes: 0"),
        (make_spirals, {"turns": 0}, ValueError, r"Invalid turns: 0"),
        (make_xor, {"noise": float("nan")}, ValueError, r"Invalid noise: nan"),
        (make_blobs, {"centers": 0}, ValueError, r"Invalid centers: 0"),
        (make_blobs, {"centers": [1.0, 2.0]}, ValueError, r"Invalid centers: .*shape \(2,\)"),
        (make_blobs, {"centers": "ab"}, TypeError, r"centers to be an int or"),
        (make_blobs, {"std": -1.0}, ValueError, r"Invalid std: -1\.0"),
        (make_blobs, {"centers": 2, "std": [1.0]}, ValueError, r"Invalid std: \[1\.0\]"),
        (make_regression_1d, {"x_range": (1.0, 0.0)}, ValueError, r"Invalid x_range"),
        (make_regression_1d, {"target": 3}, TypeError, r"target to be callable"),
        (make_regression_1d, {"target": lambda x: x.sum()}, ValueError, r"same shape"),
    ],
)
def test_toy_sets_bad_input(make, kwargs, error, message):
    with pytest.raises(error, match=message):
        make(**kwargs)


# ---------------------------------------------------------------------------------------------
# the packaged digits
# ---------------------------------------------------------------------------------------------


def test_digits_shape_classes_and_range():
    X, y = load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert y.bincount().tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert X.min() == 0 and X.max() == 1
    raw, _ = load_digits(normalize=False, dtype=torch.float64)
    assert torch.equal(raw, raw.round()) and raw.max() == 16
    torch.testing.assert_close(raw / 16, X.double())
    # the first image of the file is a zero: a ring of ink around an empty centre
    image = raw[0].view(8, 8)
    assert y[0] == 0 and image[3:5, 3:5].sum() < image[1:7, 1:7].sum() / 8


def test_digits_on_device_and_dtype(device, dtype):
    X, y = load_digits(dtype=dtype, device=device)
    assert X.dtype == dtype and X.device.type == device.type and y.device.type == device.type


def test_digits_load_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_digits tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    data._digits_table.cache_clear()  # force a real read of the packaged file
    X, y = load_digits()
    assert X.shape == (1797, 64) and len(y) == 1797


def test_digits_results_do_not_share_memory_with_the_cache():
    X, y = load_digits(normalize=False)
    X.zero_()
    y.zero_()
    X2, y2 = load_digits(normalize=False)
    assert X2.max() == 16 and y2.max() == 9


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dtype": torch.int32}, TypeError, r"floating torch\.dtype"),
        ({"normalize": "yes"}, TypeError, r"normalize to be a bool"),
    ],
)
def test_digits_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        load_digits(**kwargs)
