"""Feeding data to a training loop: mini-batches, data splits and small data sets.

Explained in: book/minibatch.md

* :func:`minibatches` walks one epoch of ``(X, y)``; its ``batch_size`` chooses between the three
  flavours of gradient descent the book compares — full batch (``None``), online / stochastic
  (``1``) and mini-batch (anything else) — and it can shard each batch across data-parallel
  workers.
* :func:`train_val_test_split` cuts a data set into disjoint training, validation and test parts.
* ``make_moons``, ``make_circles``, ``make_spirals``, ``make_xor``, ``make_blobs`` and
  ``make_regression_1d`` build small toy problems in code; :func:`load_digits` reads a real data
  set (8×8 handwritten digits) that ships inside the package, with no download.

Every function keeps tensors on the device they live on and draws randomness only from the
``generator`` it is given (or torch's default generator of the device when it is ``None``).
"""

from __future__ import annotations

import functools
import gzip
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from importlib import resources

import torch

from ._checks import check_int, check_number, check_tensor

__all__ = [
    "minibatches",
    "num_batches",
    "train_val_test_split",
    "make_moons",
    "make_circles",
    "make_spirals",
    "make_xor",
    "make_blobs",
    "make_regression_1d",
    "sine_wave",
    "load_digits",
]

Batch = tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------------------------------------
# argument checks shared by this module
# ---------------------------------------------------------------------------------------------


def _check_dataset(X, y) -> int:
    """``X`` and ``y`` must be tensors with the same number of rows, on the same device."""
    check_tensor("X", X)
    check_tensor("y", y)
    for name, value in (("X", X), ("y", y)):
        if value.dim() == 0:
            raise ValueError(
                f"{name} must hold one sample per row along dim 0, got a 0-dimensional tensor"
            )
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}")
    if n == 0:
        raise ValueError("empty dataset: X and y have 0 samples")
    if X.device != y.device:
        raise ValueError(f"X is on {X.device} but y is on {y.device}")
    return n


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected {name} to be a bool, got {type(value).__name__}: {value!r}")
    return value


def _check_generator(generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"expected generator to be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def _check_batch_size(batch_size) -> int | None:
    if batch_size is None:
        return None
    return check_int("batch_size", batch_size, low=1)


def _check_workers(rank, world_size) -> tuple[int, int]:
    world_size = check_int("world_size", world_size, low=1)
    rank = check_int("rank", rank, low=0)
    if rank >= world_size:
        raise ValueError(f"Invalid rank: {rank} (must be in [0, {world_size}) for world_size)")
    return rank, world_size


def _check_float_dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"expected a floating torch.dtype for dtype, got {dtype!r}")
    return dtype


def _permutation(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A fresh random order of ``0..n-1`` on ``device``.

    ``torch.randperm`` must run on the generator's own device, so with a CPU generator and CUDA
    data the indices are drawn on the CPU and copied over once (one small copy per epoch, never
    per batch). Without a generator the default generator of ``device`` is used directly.
    """
    where = generator.device if generator is not None else device
    return torch.randperm(n, generator=generator, device=where).to(device)


# ---------------------------------------------------------------------------------------------
# mini-batches
# ---------------------------------------------------------------------------------------------


def num_batches(
    n: int, batch_size: int | None, drop_last: bool = False, world_size: int = 1
) -> int:
    """How many batches :func:`minibatches` yields per epoch (on each worker).

    Explained in: book/minibatch.md

    With ``B = batch_size * world_size`` samples per global step this is ``ceil(n / B)``, or
    ``floor(n / B)`` when ``drop_last`` is set; a full batch (``batch_size=None``) is one step.

    >>> num_batches(60000, 64), num_batches(60000, 64, drop_last=True)
    (938, 937)
    >>> num_batches(100, 10, world_size=4)
    3
    """
    n = check_int("n", n, low=0)
    batch_size = _check_batch_size(batch_size)
    _check_bool("drop_last", drop_last)
    world_size = check_int("world_size", world_size, low=1)
    if batch_size is None:
        return 1 if n > 0 else 0
    step = batch_size * world_size
    return n // step if drop_last else -(-n // step)


def minibatches(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int | None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[Batch]:
    """Yield ``(X_batch, y_batch)`` pairs covering one epoch of the data set ``(X, y)``.

    Explained in: book/minibatch.md

    ``batch_size`` picks the flavour of gradient descent:

    * ``None`` — **full batch**: one batch holding all ``N`` samples (one update per epoch);
    * ``1`` — **online** (stochastic) gradient descent: ``N`` batches of one sample;
    * ``b`` — **mini-batch**: ``ceil(N / b)`` batches of ``b`` samples, the last one shorter
      unless ``drop_last=True`` drops it.

    Sampling is *without replacement*: with ``shuffle=True`` every call draws a fresh permutation
    ``torch.randperm(N, generator=generator)``, so calling it once per epoch reshuffles every
    epoch, and every sample appears exactly once per epoch (except the rows of a dropped last
    batch). The same seed gives the same order; with ``shuffle=False`` batches are consecutive
    rows, yielded as views of ``X`` and ``y`` (no copy at all).

    **Data-parallel sharding.** With ``world_size=k`` workers, ``batch_size`` is the batch of *one*
    worker. Every worker must pass a generator seeded identically, so all draw the same
    permutation; it is cut into global batches of ``k * batch_size`` rows, and worker ``rank``
    takes rows ``[rank * batch_size, (rank + 1) * batch_size)`` of each. Stacking the workers'
    batches in rank order gives exactly the batch of a single process with ``batch_size * k``,
    so averaging the workers' gradients of a mean loss reproduces that process's update. A last,
    partial global batch is dropped with ``drop_last=True``; otherwise it is shared out as evenly
    as possible (``torch.tensor_split``), so every worker still yields the same number of batches
    (keeping collective operations in step) but the shards may differ by one row — and a worker
    may even get an empty batch when fewer than ``k`` rows are left. Exact equivalence with the
    single process therefore needs ``N`` divisible by ``k * batch_size`` (or ``drop_last=True``).
    A full batch (``None``) with ``k`` workers splits all ``N`` rows the same way.

    **Device and cost.** Indices live on ``X``'s device; a CPU generator with CUDA data draws the
    permutation on the CPU and moves it once per epoch, a generator on ``X``'s device (or
    ``generator=None``) draws it there directly. The only data copy is the row gather of each
    batch (``index_select``); the index chunks are prepared before the first batch so the loop
    does one gather per tensor per batch and nothing else.

    The equivalent PyTorch pipeline is
    ``DataLoader(TensorDataset(X, y), batch_size, shuffle=True, drop_last=drop_last,
    generator=generator)`` (several times slower: it gathers sample by sample and re-stacks),
    and for workers ``DistributedSampler`` (which pads instead of splitting the last batch).

    Arguments are checked when the function is called, not at the first batch.

    >>> X, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    >>> [yb.tolist() for _, yb in minibatches(X, y, 4, shuffle=False)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> [yb.tolist() for _, yb in minibatches(X, y, 2, shuffle=False, rank=1, world_size=2)]
    [[2, 3], [6, 7], [9]]
    """
    n = _check_dataset(X, y)
    batch_size = _check_batch_size(batch_size)
    _check_bool("shuffle", shuffle)
    _check_bool("drop_last", drop_last)
    _check_generator(generator)
    rank, world_size = _check_workers(rank, world_size)

    if batch_size is None:
        # The whole set is one global batch, shared out between the workers.
        n_full, step = 0, n
    else:
        step = batch_size * world_size
        n_full = n // step
        if drop_last and n_full == 0:
            raise ValueError(
                f"Invalid batch_size: {batch_size} with world_size={world_size} and "
                f"drop_last=True needs at least {step} samples, but X has {n}: "
                "the epoch would yield no batch"
            )
    tail = n_full * step  # first row of the partial (or full-batch) global batch, if any
    keep_tail = tail < n and (batch_size is None or not drop_last)

    if not shuffle:
        return _slices(X, y, batch_size, tail, keep_tail, rank, world_size)

    order = _permutation(n, generator, X.device)
    chunks: list[torch.Tensor] = []
    if n_full:
        # Row r of this [n_full, batch_size] view lists this worker's samples of global step r.
        chunks.extend(order[:tail].view(n_full, world_size, batch_size)[:, rank].unbind(0))
    if keep_tail:
        chunks.append(order[tail:].tensor_split(world_size)[rank])
    return _gathers(X, y, chunks)


def _gathers(X: torch.Tensor, y: torch.Tensor, chunks: list[torch.Tensor]) -> Iterator[Batch]:
    for index in chunks:
        yield X.index_select(0, index), y.index_select(0, index)


def _slices(X, y, batch_size, tail, keep_tail, rank, world_size) -> Iterator[Batch]:
    if batch_size is not None:
        for start in range(rank * batch_size, tail, world_size * batch_size):
            yield X[start : start + batch_size], y[start : start + batch_size]
    if keep_tail:
        yield X[tail:].tensor_split(world_size)[rank], y[tail:].tensor_split(world_size)[rank]


# ---------------------------------------------------------------------------------------------
# train / validation / test split
# ---------------------------------------------------------------------------------------------


def _check_fractions(fractions) -> tuple[float, float, float]:
    if not isinstance(fractions, Sequence) or len(fractions) != 3:
        raise ValueError(
            "fractions must be a sequence of three numbers (train, validation, test), "
            f"got {fractions!r}"
        )
    for f in fractions:
        check_number("fraction", f, low=0.0, high=1.0)
    total = math.fsum(fractions)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"Invalid fractions: {tuple(fractions)} (they sum to {total}, not 1)")
    return tuple(float(f) for f in fractions)


def _rank_within_group(group: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """For each position, how many earlier positions belong to the same group."""
    n = group.shape[0]
    by_group = torch.argsort(group, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[by_group] = torch.arange(n, device=group.device) - starts[group[by_group]]
    return rank


def train_val_test_split(
    X: torch.Tensor,
    y: torch.Tensor,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    generator: torch.Generator | None = None,
    stratify: bool = False,
) -> tuple[Batch, Batch, Batch]:
    """Shuffle ``(X, y)`` and cut it into training, validation and test sets.

    Explained in: book/minibatch.md

    The model is fitted on the training set, hyperparameters (learning rate, epochs, early
    stopping) are chosen on the validation set, and the test set is looked at once, at the end,
    to estimate performance on unseen data.

    The three parts are disjoint and together hold every sample exactly once. With ``N``
    samples the training set gets ``round(f_train * N)`` of them, the first two parts together
    ``round((f_train + f_val) * N)``, the test set the rest; each part keeps the random order.
    ``stratify=True`` (classification only: ``y`` a 1-D integer tensor of labels) applies the
    same cut to every class separately, so each part keeps the class proportions of the whole.

    Returns ``((X_train, y_train), (X_val, y_val), (X_test, y_test))``; a fraction of 0 gives an
    empty part. Same generator seed, same split.

    >>> X, y = torch.randn(100, 2), torch.arange(100) % 2
    >>> (tr, _), (va, _), (te, _) = train_val_test_split(X, y, (0.6, 0.2, 0.2))
    >>> len(tr), len(va), len(te)
    (60, 20, 20)
    """
    n = _check_dataset(X, y)
    f_train, f_val, _ = _check_fractions(fractions)
    _check_generator(generator)
    _check_bool("stratify", stratify)

    order = _permutation(n, generator, X.device)
    if stratify:
        if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(
                "stratify=True needs y to be a 1-D integer tensor of class labels, "
                f"got shape {tuple(y.shape)} and dtype {y.dtype}"
            )
        _, group, counts = torch.unique(y[order], return_inverse=True, return_counts=True)
        rank = _rank_within_group(group, counts)
        size = counts[group].double()
    else:
        rank = torch.arange(n, device=X.device)
        size = torch.full((n,), float(n), dtype=torch.float64, device=X.device)

    # part 0, 1, 2 = train, validation, test, decided per position of the shuffled order
    part = (rank >= torch.round(f_train * size)).long()
    part += rank >= torch.round((f_train + f_val) * size)
    parts = []
    for p in range(3):
        index = order[part == p]
        parts.append((X.index_select(0, index), y.index_select(0, index)))
    return tuple(parts)


# ---------------------------------------------------------------------------------------------
# toy data sets made in code
# ---------------------------------------------------------------------------------------------
#
# Each generator draws its random numbers in float64 on the generator's device (or on
# ``device`` when no generator is given) and converts at the end, so a seeded CPU generator
# gives the same points whatever the target dtype or device.


def _draw_device(generator, device) -> torch.device:
    _check_generator(generator)
    return generator.device if generator is not None else torch.device(device)


def _finish(X, y, dtype, device, *, regression=False) -> Batch:
    X = X.to(device=device, dtype=dtype)
    y = y.to(device=device, dtype=dtype if regression else torch.int64)
    return X, y


def _balanced_labels(n: int, n_classes: int, generator, where) -> torch.Tensor:
    """Labels ``0..n_classes-1`` in random order, class sizes differing by at most one."""
    return torch.randperm(n, generator=generator, device=where) % n_classes


def _noise(shape, noise: float, generator, where) -> torch.Tensor:
    return noise * torch.randn(shape, generator=generator, dtype=torch.float64, device=where)


def make_moons(
    n_samples: int = 200,
    *,
    noise: float = 0.1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Batch:
    """Two interleaving half circles in 2-D, labelled 0 and 1 — not linearly separable.

    Explained in: book/minibatch.md

    Class 0 lies on ``(cos t, sin t)``, class 1 on ``(1 - cos t, 1/2 - sin t)``, with ``t``
    uniform in ``[0, π]``; Gaussian noise of standard deviation ``noise`` is added to every
    coordinate. Returns ``X`` of shape ``[n_samples, 2]`` and int64 labels ``y``, in random order.

    >>> X, y = make_moons(100, generator=torch.Generator().manual_seed(0))
    >>> X.shape, y.bincount().tolist()
    (torch.Size([100, 2]), [50, 50])
    """
    n = check_int("n_samples", n_samples, low=1)
    check_number("noise", noise, low=0.0)
    dtype = _check_float_dtype(dtype)
    where = _draw_device(generator, device)
    y = _balanced_labels(n, 2, generator, where)
    t = math.pi * torch.rand(n, generator=generator, dtype=torch.float64, device=where)
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    lower = torch.stack([1.0 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    X = torch.where(y.unsqueeze(1) == 0, upper, lower) + _noise((n, 2), noise, generator, where)
    return _finish(X, y, dtype, device)


def make_circles(
    n_samples: int = 200,
    *,
    noise: float = 0.05,
    factor: float = 0.5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Batch:
    """A circle of radius ``factor`` (class 1) inside a circle of radius 1 (class 0), in 2-D.

    Explained in: book/minibatch.md

    Angles are uniform; Gaussian noise of standard deviation ``noise`` is added to every
    coordinate. No straight line separates the classes, a single hidden layer does.

    >>> X, y = make_circles(10, noise=0.0, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(X.norm(dim=1), torch.where(y == 0, 1.0, 0.5))
    True
    """
    n = check_int("n_samples", n_samples, low=1)
    check_number("noise", noise, low=0.0)
    check_number("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
    dtype = _check_float_dtype(dtype)
    where = _draw_device(generator, device)
    y = _balanced_labels(n, 2, generator, where)
    angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64, device=where)
    radius = torch.where(y == 0, 1.0, float(factor)).to(torch.float64)
    X = radius.unsqueeze(1) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    X = X + _noise((n, 2), noise, generator, where)
    return _finish(X, y, dtype, device)


def make_spirals(
    n_samples: int = 300,
    *,
    n_classes: int = 3,
    noise: float = 0.05,
    turns: float = 0.75,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Batch:
    """``n_classes`` spiral arms winding out of the origin, one class per arm, in 2-D.

    Explained in: book/minibatch.md

    A point at position ``t ∈ [0, 1]`` along arm ``k`` sits at radius ``t`` and angle
    ``2π (turns · t + k / n_classes)``; Gaussian noise of standard deviation ``noise`` is added to
    every coordinate. The classic "needs a deep enough network" problem.

    >>> X, y = make_spirals(300, n_classes=3, generator=torch.Generator().manual_seed(0))
    >>> X.shape, y.bincount().tolist()
    (torch.Size([300, 2]), [100, 100, 100])
    """
    n = check_int("n_samples", n_samples, low=1)
    k = check_int("n_classes", n_classes, low=1)
    check_number("noise", noise, low=0.0)
    check_number("turns", turns, low=0.0, low_open=True)
    dtype = _check_float_dtype(dtype)
    where = _draw_device(generator, device)
    y = _balanced_labels(n, k, generator, where)
    t = torch.rand(n, generator=generator, dtype=torch.float64, device=where)
    angle = 2 * math.pi * (turns * t + y.to(torch.float64) / k)
    X = t.unsqueeze(1) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    X = X + _noise((n, 2), noise, generator, where)
    return _finish(X, y, dtype, device)


def make_xor(
    n_samples: int = 200,
    *,
    noise: float = 0.25,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Batch:
    """The XOR problem: clouds around the four corners ``(±1, ±1)``, label 1 where signs differ.

    Explained in: book/minibatch.md

    Corners are used equally often (sizes differing by at most one); Gaussian noise of standard
    deviation ``noise`` is added to every coordinate, so ``noise=0`` gives the four points of the
    XOR truth table. A perceptron cannot fit it; one hidden layer can.

    >>> X, y = make_xor(4, noise=0.0, generator=torch.Generator().manual_seed(0))
    >>> sorted(zip(X.tolist(), y.tolist()))
    [([-1.0, -1.0], 0), ([-1.0, 1.0], 1), ([1.0, -1.0], 1), ([1.0, 1.0], 0)]
    """
    n = check_int("n_samples", n_samples, low=1)
    check_number("noise", noise, low=0.0)
    dtype = _check_float_dtype(dtype)
    where = _draw_device(generator, device)
    corner = _balanced_labels(n, 4, generator, where)
    first, second = corner % 2, corner // 2
    signs = torch.stack([2 * first - 1, 2 * second - 1], dim=1).to(torch.float64)
    X = signs + _noise((n, 2), noise, generator, where)
    return _finish(X, first ^ second, dtype, device)


def make_blobs(
    n_samples: int = 300,
    *,
    centers: int | Sequence[Sequence[float]] | torch.Tensor = 3,
    std: float | Sequence[float] = 1.0,
    n_features: int = 2,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Batch:
    """Gaussian clouds, one class per cloud.

    Explained in: book/minibatch.md

    ``centers`` is either a number of clouds, whose centres are then drawn uniformly in the box
    ``[-5, 5]^n_features``, or the centres themselves as a ``[n_classes, n_features]`` array
    (``n_features`` is then ignored). ``std`` is the standard deviation of every cloud, or one
    value per cloud. Class sizes differ by at most one.

    >>> X, y = make_blobs(90, centers=[[0.0, 0.0], [4.0, 4.0]], std=0.5,
    ...                   generator=torch.Generator().manual_seed(0))
    >>> X.shape, y.bincount().tolist()
    (torch.Size([90, 2]), [45, 45])
    """
    n = check_int("n_samples", n_samples, low=1)
    dtype = _check_float_dtype(dtype)
    where = _draw_device(generator, device)
    if isinstance(centers, numbers.Integral) and not isinstance(centers, bool):
        k = check_int("centers", centers, low=1)
        d = check_int("n_features", n_features, low=1)
        box = torch.rand((k, d), generator=generator, dtype=torch.float64, device=where)
        means = 10.0 * box - 5.0
    else:
        try:
            means = torch.as_tensor(centers, dtype=torch.float64).to(where)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"expected centers to be an int or a [n_classes, n_features] array, got {centers!r}"
            ) from error
        if means.dim() != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(
                "Invalid centers: expected a non-empty [n_classes, n_features] array, "
                f"got shape {tuple(means.shape)}"
            )
        k = means.shape[0]
    if isinstance(std, numbers.Real) and not isinstance(std, bool):
        check_number("std", std, low=0.0)
        spread = torch.full((k,), float(std), dtype=torch.float64, device=where)
    else:
        spread = torch.as_tensor(std, dtype=torch.float64).to(where)
        if spread.shape != (k,) or bool((spread < 0).any()) or bool(spread.isnan().any()):
            raise ValueError(
                f"Invalid std: {std!r} (expected a number or {k} non-negative numbers, one per "
                "center)"
            )
    y = _balanced_labels(n, k, generator, where)
    X = means[y] + spread[y].unsqueeze(1) * _noise((n, means.shape[1]), 1.0, generator, where)
    return _finish(X, y, dtype, device)


def sine_wave(x: torch.Tensor) -> torch.Tensor:
    """The noise-free target of :func:`make_regression_1d`: ``sin(2πx)``.

    Explained in: book/minibatch.md
    """
    return torch.sin(2 * math.pi * x)


def make_regression_1d(
    n_samples: int = 30,
    *,
    noise: float = 0.2,
    x_range: tuple[float, float] = (0.0, 1.0),
    target: Callable[[torch.Tensor], torch.Tensor] = sine_wave,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Batch:
    """Noisy samples of a 1-D function — for regression and under/over-fitting demos.

    Explained in: book/minibatch.md

    ``x`` is uniform in ``x_range`` and ``y = target(x) + noise · ε`` with ``ε ~ N(0, 1)``; the
    default target is :func:`sine_wave`, ``sin(2πx)`` on ``[0, 1]``. Few samples and a big
    network overfit (the curve threads every noisy point); a too small one underfits.

    Returns float ``X`` and ``y``, both of shape ``[n_samples, 1]`` (the shape of a network with
    one output, ready for ``mse_loss``), in random order.

    >>> X, y = make_regression_1d(20, noise=0.0, generator=torch.Generator().manual_seed(0))
    >>> X.shape, y.shape, torch.allclose(y, sine_wave(X), atol=1e-6)
    (torch.Size([20, 1]), torch.Size([20, 1]), True)
    """
    n = check_int("n_samples", n_samples, low=1)
    check_number("noise", noise, low=0.0)
    dtype = _check_float_dtype(dtype)
    if not isinstance(x_range, Sequence) or len(x_range) != 2:
        raise ValueError(f"Invalid x_range: {x_range!r} (expected a pair (low, high))")
    low, high = (check_number("x_range", v) for v in x_range)
    if not low < high:
        raise ValueError(f"Invalid x_range: {tuple(x_range)} (low must be below high)")
    if not callable(target):
        raise TypeError(f"expected target to be callable, got {type(target).__name__}")
    where = _draw_device(generator, device)
    u = torch.rand((n, 1), generator=generator, dtype=torch.float64, device=where)
    X = low + (high - low) * u
    clean = target(X)
    if not isinstance(clean, torch.Tensor) or clean.shape != X.shape:
        raise ValueError(
            "target must map a [n, 1] tensor to a tensor of the same shape, got "
            f"{type(clean).__name__} {tuple(getattr(clean, 'shape', ()))}"
        )
    y = clean.to(torch.float64) + _noise((n, 1), noise, generator, where)
    return _finish(X, y, dtype, device, regression=True)


# ---------------------------------------------------------------------------------------------
# a real data set shipped with the package
# ---------------------------------------------------------------------------------------------

_DIGITS_FILE = "datasets/digits.csv.gz"
_DIGITS_SHAPE = (1797, 65)  # 64 pixel counts and the label on each line


@functools.lru_cache(maxsize=1)
def _digits_table() -> torch.Tensor:
    """Parse the packaged CSV once; an int64 CPU tensor of shape [1797, 65]."""
    source = resources.files("nnbolts").joinpath(_DIGITS_FILE)
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as text:
        values = [int(v) for v in text.read().replace("\n", ",").split(",") if v]
    table = torch.tensor(values, dtype=torch.int64)
    if table.numel() != _DIGITS_SHAPE[0] * _DIGITS_SHAPE[1]:
        raise RuntimeError(f"{_DIGITS_FILE} is damaged: {table.numel()} values")
    table = table.view(_DIGITS_SHAPE)
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise RuntimeError(f"{_DIGITS_FILE} is damaged: values out of range")
    return table


def load_digits(
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    normalize: bool = True,
) -> Batch:
    """The UCI optical handwritten digits: 1797 grey 8×8 images of the digits 0–9.

    Explained in: book/minibatch.md

    Read from a file inside the installed package (no network). Returns ``X`` of shape
    ``[1797, 64]`` (each row an 8×8 image flattened row by row; ``X.view(-1, 8, 8)`` gives the
    images) and int64 labels ``y`` of shape ``[1797]``, about 180 per class. The raw pixels are
    counts in ``0..16``; ``normalize=True`` divides them by 16 so inputs lie in ``[0, 1]``.

    Source: E. Alpaydin and C. Kaynak, UCI Machine Learning Repository (CC BY 4.0), in the copy
    distributed by scikit-learn (BSD-3-Clause); see ``nnbolts/datasets/README.md``.

    >>> X, y = load_digits()
    >>> X.shape, y.shape, float(X.max())
    (torch.Size([1797, 64]), torch.Size([1797]), 1.0)
    """
    dtype = _check_float_dtype(dtype)
    _check_bool("normalize", normalize)
    table = _digits_table()
    X = table[:, :64].to(dtype=dtype)
    if normalize:
        X = X / 16
    return X.to(device), table[:, 64].to(device=device, copy=True)
