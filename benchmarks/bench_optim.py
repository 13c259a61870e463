"""How long one ``step()`` of nnbolts' optimizers takes, as a ratio to its reference's
(torch.optim's namesake, or the authors' package), measured in the same run.

On about 1M float32 parameters split into 4 and into 100 tensors:

* default path, every rule: each library left to choose (on CPU torch takes the one-tensor loop;
  on CUDA torch takes its multi-tensor path and nnbolts follows where it has one). Lion is timed
  against ``lion_pytorch.Lion`` and ScheduleFreeAdamW against ``schedulefree.AdamWScheduleFree``
  (in training mode; its default is the multi-tensor path, on CPU too), where those packages are
  installed.
* fast path, for Adam, AdamW, SGD with momentum 0.9, RMSprop, Adamax, RAdam and ASGD:
  ``foreach=True`` on both sides. Where nnbolts has no multi-tensor kernel for a rule the table
  says so instead of timing the one-tensor loop under that name.

Parameter layouts follow the rule: vectors for most; matrices for Adafactor (which factors
them) and Muon (matrices only; a sixteenth of the parameters, since each step orthogonalises
every matrix with matrix products); embedding-like matrices whose sparse gradients touch a tenth
of the rows for SparseAdam; LBFGS takes one iteration per ``step(closure)`` with a history of 10
and a closure that sets a new gradient each call (the closure's time is in both figures).

Gradients are set once; only ``optimizer.step()`` is timed (with a device synchronisation on
CUDA). After a warm-up, nnbolts and reference steps alternate (A B B A ...) so that drift of a
shared machine falls on both alike; each figure is the median of ``--steps`` steps, and the
ratio of the two sides' fastest steps is printed beside the ratio of medians (other processes
only ever add time, so on a busy machine the minimum is the steadier estimate; ``--stat min``
applies the target to it). ``--clock cpu`` times each step by the thread's CPU time, which
leaves out the time other processes hold the core. Targets: default path at most 1.1x the
reference's default, fast path at most 1.1x torch's foreach.

Usage: ``python benchmarks/bench_optim.py [--device cuda] [--steps 50] [--threads 1]
[--only NAME ...] [--stat median|min] [--clock wall|cpu]``. This is a script, not a test:
timings depend on the machine. On a busy CPU use ``--threads 1``: with several threads, every
parallel kernel waits at a barrier for threads the scheduler has parked, and those stalls, not
the optimizers, then dominate the times.
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import time
from dataclasses import dataclass, field

import torch

import nnbolts.optim

TARGET = 1.1


@dataclass
class Case:
    """One row group: ``ours``/``reference`` build the optimizers from params and ``kwargs``."""

    name: str
    ours: str                    # class name in nnbolts.optim
    reference: object            # a class, or a zero-argument function returning one (or None)
    kwargs: dict
    reference_name: str = "torch"
    layout: str = "vector"       # vector | matrix | sparse | closure
    scale: int = 1               # parameters = numel / scale
    fast_path: bool = False      # also time foreach=True on both sides
    train_mode: bool = False     # call .train() before timing (schedule-free)
    extra: dict = field(default_factory=dict)  # nnbolts-only constructor arguments


def _package(module, attr):
    def load():
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError:
            return None
    return load


CASES = [
    Case("Adam", "Adam", torch.optim.Adam, dict(lr=1e-3), fast_path=True),
    Case("AdamW", "AdamW", torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-2), fast_path=True),
    Case("SGD momentum 0.9", "SGD", torch.optim.SGD, dict(lr=1e-2, momentum=0.9),
         fast_path=True),
    Case("RMSprop", "RMSprop", torch.optim.RMSprop, dict(lr=1e-2), fast_path=True),
    Case("Adagrad", "Adagrad", torch.optim.Adagrad, dict(lr=1e-2)),
    Case("Adadelta", "Adadelta", torch.optim.Adadelta, dict(lr=1.0)),
    Case("NAdam", "NAdam", torch.optim.NAdam, dict(lr=2e-3)),
    Case("Adamax", "Adamax", torch.optim.Adamax, dict(lr=2e-3), fast_path=True),
    Case("RAdam", "RAdam", torch.optim.RAdam, dict(lr=1e-3), fast_path=True),
    Case("ASGD", "ASGD", torch.optim.ASGD, dict(lr=1e-2, t0=0), fast_path=True),
    Case("Rprop", "Rprop", torch.optim.Rprop, dict(lr=1e-2)),
    Case("Adafactor", "Adafactor", getattr(torch.optim, "Adafactor", None), dict(lr=1e-2),
         layout="matrix"),
    Case("Muon", "Muon", getattr(torch.optim, "Muon", None), dict(lr=1e-3), layout="matrix",
         scale=16),
    Case("SparseAdam", "SparseAdam", torch.optim.SparseAdam, dict(lr=1e-3), layout="sparse"),
    Case("LBFGS", "LBFGS", torch.optim.LBFGS, dict(lr=1.0, max_iter=1, history_size=10),
         layout="closure"),
    Case("Lion", "Lion", _package("lion_pytorch", "Lion"), dict(lr=1e-4, weight_decay=1e-2),
         reference_name="lion-pytorch"),
    Case("ScheduleFreeAdamW", "ScheduleFreeAdamW",
         _package("schedulefree", "AdamWScheduleFree"), dict(lr=2.5e-3),
         reference_name="schedulefree", train_mode=True),
]


def split_sizes(total: int, pieces: int) -> list[int]:
    """``pieces`` sizes, as equal as possible, adding up to ``total``."""
    base, extra = divmod(total, pieces)
    return [base + (i < extra) for i in range(pieces)]


def shapes_of(layout: str, total: int, pieces: int) -> list[tuple[int, ...]]:
    if layout in ("vector", "closure"):
        return [(n,) for n in split_sizes(total, pieces)]
    if layout == "matrix":
        side = math.isqrt(total // pieces)
        return [(side, side + i % 3) for i in range(pieces)]
    if layout == "sparse":
        return [(max(10, total // pieces // 64), 64)] * pieces
    raise ValueError(f"unknown layout {layout!r}")


def make_params(layout, total, pieces, device, seed=0):
    """Parameters with gradients already set (the same values for every call with one seed)."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes_of(layout, total, pieces):
        p = torch.randn(shape, generator=gen).to(device).requires_grad_()
        if layout == "sparse":  # an embedding's gradient: a tenth of the rows, coalesced
            rows = torch.randperm(shape[0], generator=gen)[:shape[0] // 10].sort().values
            values = torch.randn(len(rows), shape[1], generator=gen)
            p.grad = torch.sparse_coo_tensor(rows[None], values, shape,
                                             check_invariants=True).coalesce().to(device)
        else:
            p.grad = torch.randn(shape, generator=gen).to(device)
        params.append(p)
    return params


def closure_for(params):
    """LBFGS' closure: a new gradient each call (a fixed one plus a small multiple of the
    parameter) and a loss that keeps changing, so no tolerance ends the step early."""
    fixed = [p.grad.clone() for p in params]
    calls = [0]

    def closure():
        calls[0] += 1
        for p, g in zip(params, fixed):
            p.grad = torch.add(g, p.detach(), alpha=0.01)
        return torch.tensor(float(calls[0]))
    return closure


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCK = time.perf_counter


def time_step(opt, device, closure=None) -> float:
    sync(device)
    start = CLOCK()
    if closure is None:
        opt.step()
    else:
        opt.step(closure)
    sync(device)
    return CLOCK() - start


def build(case: Case, cls, params, foreach, ours: bool):
    kwargs = dict(case.kwargs)
    if foreach is not None:
        kwargs["foreach"] = foreach
    if ours:
        kwargs.update(case.extra)
    opt = cls(params, **kwargs)
    if case.train_mode:
        opt.train()
    return opt


def compare(case, ours_cls, ref_cls, shape, device, foreach, steps, warmup):
    """Step times in ms, interleaved A B B A: medians (nnbolts, reference), then minimums."""
    p_ours, p_ref = make_params(*shape, device), make_params(*shape, device)
    ours = build(case, ours_cls, p_ours, foreach, True)
    ref = build(case, ref_cls, p_ref, foreach, False)
    closures = {}
    if case.layout == "closure":
        closures = {id(ours): closure_for(p_ours), id(ref): closure_for(p_ref)}
    for _ in range(warmup):
        for opt in (ours, ref):
            time_step(opt, device, closures.get(id(opt)))
    t_ours, t_ref = [], []
    for i in range(steps):
        pair = (ours, ref) if i % 2 == 0 else (ref, ours)
        for opt in pair:
            (t_ours if opt is ours else t_ref).append(time_step(opt, device,
                                                                closures.get(id(opt))))
    return (1e3 * statistics.median(t_ours), 1e3 * statistics.median(t_ref),
            1e3 * min(t_ours), 1e3 * min(t_ref))


def alone(case, ref_cls, shape, device, foreach, steps, warmup):
    """Median step time in ms of the reference by itself (where nnbolts has no match)."""
    opt = build(case, ref_cls, make_params(*shape, device), foreach, False)
    for _ in range(warmup):
        time_step(opt, device)
    return 1e3 * statistics.median(time_step(opt, device) for _ in range(steps))


def resolve(reference):
    if isinstance(reference, type) or reference is None:
        return reference
    return reference()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--numel", type=int, default=2**20, help="parameters in all")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per side (>= 20)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--only", nargs="*", default=None, help="rule names (default: all)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this thread's CPU time (with --threads 1 on CPU), which "
                             "leaves out the time other processes hold the core")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="the ratio the target applies to (min: on a shared machine)")
    args = parser.parse_args(argv)
    if args.steps < 20:
        parser.error("--steps must be at least 20")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if args.device != "cpu" or torch.get_num_threads() != 1:
            parser.error("--clock cpu measures this thread's CPU time: use it with --device cpu "
                         "--threads 1")
        global CLOCK
        CLOCK = time.thread_time
    device = torch.device(args.device)

    print(f"nnbolts.optim vs torch.optim {torch.__version__} (and the authors' packages): time "
          f"of one step(), float32, {args.numel:,} parameters on {device} "
          f"({torch.get_num_threads()} CPU threads), median of {args.steps} steps after "
          f"{args.warmup} warm-up, nnbolts and reference interleaved, {args.clock} clock")
    header = (f"{'rule':<18} {'reference':<13} {'tensors':>7}  {'path':<8} {'nnbolts ms':>10} "
              f"{'ref ms':>9} {'ratio':>6} {'min ratio':>9}  target ({args.stat})")
    print(header)
    print("-" * len(header))
    misses, skipped = [], []
    for case in CASES:
        if args.only is not None and case.name not in args.only and case.ours not in args.only:
            continue
        ours_cls = getattr(nnbolts.optim, case.ours, None)
        ref_cls = resolve(case.reference)
        if ours_cls is None or ref_cls is None:
            skipped.append(f"{case.name} ({'nnbolts' if ours_cls is None else case.reference_name}"
                           " not available)")
            continue
        paths = [("default", None)] + ([("foreach", True)] if case.fast_path else [])
        for pieces in (4, 100):
            shape = (case.layout, args.numel // case.scale, pieces)
            for path, foreach in paths:
                row = f"{case.name:<18} {case.reference_name:<13} {pieces:>7}  {path:<8}"
                if foreach and not getattr(ours_cls, "has_foreach", False):
                    theirs = alone(case, ref_cls, shape, device, foreach, args.steps,
                                   args.warmup)
                    print(f"{row} {'-':>10} {theirs:>9.3f} {'-':>6} {'-':>9}  none: nnbolts has no "
                          f"multi-tensor {case.name} (foreach=True runs the one-tensor rule)")
                    continue
                ours, theirs, ours_min, theirs_min = compare(
                    case, ours_cls, ref_cls, shape, device, foreach, args.steps, args.warmup)
                ratio, min_ratio = ours / theirs, ours_min / theirs_min
                judged = ratio if args.stat == "median" else min_ratio
                verdict = "ok" if judged <= TARGET else "MISSED"
                if judged > TARGET:
                    misses.append(f"{case.name}/{pieces}/{path}")
                print(f"{row} {ours:>10.3f} {theirs:>9.3f} {ratio:>6.2f} {min_ratio:>9.2f}  "
                      f"<= {TARGET} {verdict}", flush=True)
    print()
    print("ratio = nnbolts ms / reference ms (medians); min ratio = the same with each side's "
          "fastest step (noise from other processes only adds time, so on a shared machine the "
          "minimum is the least disturbed estimate). In the foreach rows without nnbolts, "
          "'ref ms' is torch's foreach time (for reference only). Muon runs on a sixteenth of "
          "the parameters.")
    if skipped:
        print("Skipped: " + ", ".join(skipped))
    print("Targets missed: " + (", ".join(misses) if misses else "none"))


if __name__ == "__main__":
    main()
