"""Grading a minibatch iterator against ``nnbolts.data.minibatches``."""

from __future__ import annotations

import torch

import nnbolts.data

from ._cases import _devices_or_default, run_seed
from ._compare import compare_tensors, describe_type, first_change, values
from ._engine import (
    DEFAULT_BUDGET,
    DEFAULT_TIMEOUT,
    Session,
    Where,
    _resolve_dtypes,
    clone_value,
    describe_call,
    fail,
)
from ._tensors import plain_tensor

DEFAULT_CONFIGS = (
    {"batch_size": 5},
    {"batch_size": 5, "drop_last": True},
    {"batch_size": 1},
    {"batch_size": None},
    {"batch_size": 7, "shuffle": False},
    {"batch_size": 7, "shuffle": False, "drop_last": True},
    {"batch_size": 30},
)


# Generators are seeded away from the seeds people pass to torch.manual_seed (0, 42, ...): a
# submission that ignores the generator draws from the global RNG, and if an earlier cell had
# seeded that with the case's seed the two orders would coincide and hide the mistake.
_SEED_OFFSET = 1_000_003


def _dataset(n, features, device, dtype):
    """Rows that say who they are: ``X[i] = (i·f, i·f + 1, ...)`` and ``y[i] = i``."""
    ids = torch.arange(n, device=device)
    X = (ids[:, None] * features + torch.arange(features, device=device)).to(dtype)
    return X, ids


def check_minibatches(student, *, reference=None, n=23, features=3, configs=None,
                      devices=None, dtypes=None, seed=0, match_order=True,
                      timeout=DEFAULT_TIMEOUT, budget=DEFAULT_BUDGET) -> None:
    """Grade a minibatch iterator ``minibatches(X, y, batch_size, *, shuffle=True,
    drop_last=False, generator=None)`` against ``nnbolts.data.minibatches``.

    The data set has ``n`` rows (default 23, so batches of 5 leave a partial batch of 3) whose
    values name their row (``y`` holds the sample ids, ``X`` rows encode them too). For each
    configuration (default: batch sizes 5, 1, None (full batch), 7 without shuffling, 30 >
    n, with and without ``drop_last``), device and dtype, both functions get a CPU generator
    seeded alike, and the student's epoch is checked for: pairs of plain tensors on the data's
    device with ``X``'s and ``y``'s dtypes; rows of ``X_batch`` and ``y_batch`` that belong
    together; every sample exactly once (none repeated, none lost; with ``drop_last`` exactly
    those of the full batches); the reference's batch sizes; the original order without
    shuffling; and, with ``match_order``, the reference's order under the same generator (one
    ``torch.randperm(n, generator=generator)`` per epoch). ``X`` and ``y`` must not be
    modified; at most ``n + 1`` batches are read from the student's iterator.

    The message recognises a dropped last partial batch, a kept one under ``drop_last=True``,
    sampling with replacement, a generator that is ignored, and X/y shuffled apart. Other
    arguments as in :func:`check_function`.

    Example hidden-test cell: ``check_minibatches(minibatches)``
    """
    reference = reference or nnbolts.data.minibatches
    session = Session("minibatches" if not hasattr(student, "__name__") else student.__name__,
                      timeout=timeout, budget=budget)
    configs = [dict(c) for c in (configs or DEFAULT_CONFIGS)]
    session.vet_student(student)
    for device in _devices_or_default(devices):
        for dtype in _resolve_dtypes(dtypes):
            for k, config in enumerate(configs):
                _one_epoch(session, student, reference, config, k, len(configs), n,
                           features, device, dtype, _SEED_OFFSET + run_seed(seed) * 104729 + k,
                           match_order)


def _epoch(session, fn, X, y, config, seed, *, student, where=None, call_text="", limit=None):
    kwargs = dict(config)
    batch_size = kwargs.pop("batch_size")
    generator = torch.Generator().manual_seed(seed)
    if not student:
        return list(session.reference(fn, X, y, batch_size, generator=generator, **kwargs))
    iterator = session.student(lambda: iter(fn(X, y, batch_size, generator=generator, **kwargs)),
                               where, call_text)
    batches = []
    while True:
        item = session.student(lambda: next(iterator, _END), where, call_text)
        if item is _END:
            return batches
        batches.append(item)
        if len(batches) > limit:
            fail(session.name, f"yielded more than {limit} batches for {X.shape[0]} samples "
                 "(does the loop ever stop?)", where, [f"call: {call_text}"])


_END = object()


def _one_epoch(session, student, reference, config, k, n_configs, n, features, device, dtype,
               seed, match_order):
    name = session.name
    X, y = _dataset(n, features, device, dtype)
    where = Where(device, dtype, k, n_configs)
    kwargs = {key: v for key, v in config.items() if key != "batch_size"}
    call_text = describe_call(name, ["X", "y", "batch_size"], (X, y, config["batch_size"]),
                              {**kwargs, "generator": torch.Generator()})
    expected = _epoch(session, reference, clone_value(X), clone_value(y), config, seed,
                      student=False)
    Xs, ys = clone_value(X), clone_value(y)
    got = _epoch(session, student, Xs, ys, config, seed, student=True, where=where,
                 call_text=call_text, limit=n + 1)
    for label, before, after in (("X", X, Xs), ("y", y, ys)):
        change = first_change(before, after, label)
        if change:
            fail(name, f"modified its argument {label}", where, [f"call: {call_text}", change])

    ids_per_batch = []
    for b, item in enumerate(got):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            fail(name, f"batch {b + 1} is {describe_type(item)}; expected a pair "
                 "(X_batch, y_batch)", where, [f"call: {call_text}"])
        xb, yb = item
        ref_xb, ref_yb = expected[b] if b < len(expected) else expected[-1]
        for label, got_t, ref_t, src in (("X_batch", xb, ref_xb, X), ("y_batch", yb, ref_yb, y)):
            if plain_tensor(got_t) is None:
                fail(name, f"batch {b + 1}: {label} is {describe_type(got_t)}, not a "
                     "torch.Tensor", where, [f"call: {call_text}"])
            probe = torch.empty((got_t.shape[0], *ref_t.shape[1:]), dtype=src.dtype,
                                device=src.device)
            mismatch = compare_tensors(probe, got_t, 0.0, 0.0, input_dtype=src.dtype,
                                       input_device=src.device, value_checks=False)
            if mismatch is not None:
                fail(name, f"batch {b + 1}: {label} {mismatch.text.removeprefix('returned ')}",
                     where, [f"call: {call_text}"])
        if xb.shape[0] != yb.shape[0]:
            fail(name, f"batch {b + 1} has {xb.shape[0]} rows of X but {yb.shape[0]} of y",
                 where, [f"call: {call_text}"])
        ids = [int(v) for v in values(yb)]
        rows = values(xb)
        for j, sample in enumerate(ids):
            if rows[j * features] != sample * features:
                fail(name, f"batch {b + 1}: row {j} of X_batch does not belong with "
                     f"y_batch[{j}]", where, [
                         f"call: {call_text}",
                         "This looks like: X and y shuffled separately (hint: index X and y "
                         "with the same permutation so that each sample keeps its label)"])
        ids_per_batch.append(ids)

    flat = [i for ids in ids_per_batch for i in ids]
    ref_ids = [[int(v) for v in values(yb)] for _, yb in expected]
    ref_flat = [i for ids in ref_ids for i in ids]
    sizes, ref_sizes = [len(ids) for ids in ids_per_batch], [len(ids) for ids in ref_ids]
    seen, repeated = set(), []
    for i in flat:
        if i in seen:
            repeated.append(i)
        seen.add(i)
    if repeated:
        missing = sorted(set(range(n)) - seen)
        fail(name, f"sample {repeated[0]} appears more than once in one epoch", where, [
            f"call: {call_text}",
            f"{len(repeated)} repeats; {len(missing)} samples never appear",
            "This looks like: samples drawn with replacement (hint: an epoch visits every "
            "sample once, so draw one permutation of all n indices and cut it into batches)"])
    drop_last = config.get("drop_last", False)
    if set(flat) != set(ref_flat) or sizes != ref_sizes:
        lines = [f"call: {call_text}",
                 f"batch sizes {_sizes(sizes)}, expected {_sizes(ref_sizes)}"]
        missing = sorted(set(ref_flat) - set(flat))
        extra = sorted(set(flat) - set(ref_flat))
        if missing:
            lines.append(f"{len(missing)} samples of the epoch never appear")
        if extra:
            lines.append(f"{len(extra)} samples appear that should have been dropped")
        tail = len(ref_flat) - len(flat)
        if sizes == ref_sizes and config.get("shuffle", True) and _order_changes(
                session, student, X, y, config, seed, where, call_text, n, flat):
            lines.append(_IGNORED_GENERATOR)
        elif not drop_last and ref_sizes[:-1] == sizes and tail == ref_sizes[-1]:
            lines.append("This looks like: the last, shorter batch is dropped (hint: with "
                         "drop_last=False the final partial batch is yielded too)")
        elif drop_last and sizes[:-1] == ref_sizes and sizes and sizes[-1] < (
                config["batch_size"] or n):
            lines.append("This looks like: the last, shorter batch is kept although "
                         "drop_last=True (hint: drop_last drops the final partial batch)")
        fail(name, "yields the wrong batches", where, lines)
    if flat != ref_flat:
        shuffle = config.get("shuffle", True)
        if not shuffle:
            fail(name, "changes the order although shuffle=False", where, [
                f"call: {call_text}",
                "without shuffling the batches are consecutive rows in their original order"])
        if flat == sorted(flat):
            fail(name, "does not shuffle although shuffle=True", where, [f"call: {call_text}"])
        if not match_order:
            return
        if _order_changes(session, student, X, y, config, seed, where, call_text, n, flat):
            fail(name, "gives a different order for the same seed", where,
                 [f"call: {call_text}", _IGNORED_GENERATOR])
        position = next(i for i, (a, b) in enumerate(zip(flat, ref_flat)) if a != b)
        fail(name, "visits the samples in another order than the reference", where, [
            f"call: {call_text}",
            f"first difference at position {position} of the epoch: expected sample "
            f"{ref_flat[position]}, got sample {flat[position]}",
            "draw the order once per epoch with torch.randperm(n, generator=generator) and "
            "cut it into consecutive batches"])


_IGNORED_GENERATOR = ("This looks like: the generator is ignored (hint: draw the order with "
                      "the generator argument, so that a seeded generator makes the epoch "
                      "reproducible)")


def _order_changes(session, student, X, y, config, seed, where, call_text, n, flat) -> bool:
    """Whether a second epoch under an identically seeded generator visits other samples."""
    again = _epoch(session, student, clone_value(X), clone_value(y), config, seed,
                   student=True, where=where, call_text=call_text, limit=n + 1)
    return [int(v) for _, yb in again for v in values(yb)] != flat


def _sizes(sizes) -> str:
    if len(sizes) > 8:
        return f"[{', '.join(map(str, sizes[:6]))}, ..., {sizes[-1]}] ({len(sizes)} batches)"
    return str(sizes)
