"""How long one ``step()`` of nnbolts' optimizers takes, as a ratio to torch.optim's, measured in
the same run.

For Adam, AdamW, SGD with momentum 0.9 and RMSprop, on about 1M float32 parameters split into 4
and into 100 tensors, two comparisons:

* default path: each library left to choose (on CPU both take the one-tensor loop; on CUDA
  torch takes its multi-tensor path and nnbolts follows where it has one),
* fast path: ``foreach=True`` on both sides. Where nnbolts has no multi-tensor kernel for a rule
  the table says so instead of timing the one-tensor loop under that name.

Gradients are set once; only ``optimizer.step()`` is timed (with a device synchronisation on
CUDA). After a warm-up, nnbolts and torch steps alternate (A B B A ...) so that drift of a
shared machine falls on both alike; each figure is the median of ``--steps`` steps.
Targets: default path at most 1.1x torch's default, fast path at most 1.1x torch's foreach.

Usage: ``python benchmarks/bench_optim.py [--device cuda] [--steps 50] [--threads 1]``.
This is a script, not a test: timings depend on the machine. On a busy CPU use ``--threads 1``:
with several threads, every parallel kernel waits at a barrier for threads the scheduler has
parked, and those stalls, not the optimizers, then dominate the times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nnbolts.optim.adam import Adam, AdamW
from nnbolts.optim.rmsprop import RMSprop
from nnbolts.optim.sgd import SGD

TARGET = 1.1

# name, nnbolts class, torch class, constructor arguments shared by both
RULES = [
    ("Adam", Adam, torch.optim.Adam, dict(lr=1e-3)),
    ("AdamW", AdamW, torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-2)),
    ("SGD momentum 0.9", SGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9)),
    ("RMSprop", RMSprop, torch.optim.RMSprop, dict(lr=1e-2)),
]


def split_sizes(total: int, pieces: int) -> list[int]:
    """``pieces`` sizes, as equal as possible, adding up to ``total``."""
    base, extra = divmod(total, pieces)
    return [base + (i < extra) for i in range(pieces)]


def make_params(sizes, device, seed=0):
    """Parameters with gradients already set (the same values for every call with one seed)."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for n in sizes:
        p = torch.randn(n, generator=gen).to(device).requires_grad_()
        p.grad = torch.randn(n, generator=gen).to(device)
        params.append(p)
    return params


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(opt, device) -> float:
    sync(device)
    start = time.perf_counter()
    opt.step()
    sync(device)
    return time.perf_counter() - start


def compare(ours_cls, torch_cls, kwargs, sizes, device, foreach, steps, warmup):
    """Median step times in ms (nnbolts, torch), interleaved A B B A."""
    ours = ours_cls(make_params(sizes, device), **kwargs, foreach=foreach)
    theirs = torch_cls(make_params(sizes, device), **kwargs, foreach=foreach)
    for _ in range(warmup):
        time_step(ours, device)
        time_step(theirs, device)
    t_ours, t_theirs = [], []
    for i in range(steps):
        pair = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        for opt in pair:
            (t_ours if opt is ours else t_theirs).append(time_step(opt, device))
    return 1e3 * statistics.median(t_ours), 1e3 * statistics.median(t_theirs)


def alone(torch_cls, kwargs, sizes, device, foreach, steps, warmup):
    """Median step time in ms of torch's optimizer by itself (where nnbolts has no match)."""
    opt = torch_cls(make_params(sizes, device), **kwargs, foreach=foreach)
    for _ in range(warmup):
        time_step(opt, device)
    return 1e3 * statistics.median(time_step(opt, device) for _ in range(steps))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--numel", type=int, default=2**20, help="parameters in all")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per side (>= 20)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.steps < 20:
        parser.error("--steps must be at least 20")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    print(f"nnbolts.optim vs torch.optim {torch.__version__}: time of one step(), float32, "
          f"{args.numel:,} parameters on {device} ({torch.get_num_threads()} CPU threads), "
          f"median of {args.steps} steps after {args.warmup} warm-up, nnbolts and torch "
          f"interleaved")
    header = (f"{'rule':<17} {'tensors':>7}  {'path':<8} {'nnbolts ms':>10} {'torch ms':>9} "
              f"{'ratio':>6}  target")
    print(header)
    print("-" * len(header))
    misses = []
    for name, ours_cls, torch_cls, kwargs in RULES:
        for pieces in (4, 100):
            sizes = split_sizes(args.numel, pieces)
            for path, foreach in (("default", None), ("foreach", True)):
                row = f"{name:<17} {pieces:>7}  {path:<8}"
                if foreach and not getattr(ours_cls, "has_foreach", False):
                    theirs = alone(torch_cls, kwargs, sizes, device, foreach, args.steps,
                                   args.warmup)
                    print(f"{row} {'-':>10} {theirs:>9.3f} {'-':>6}  none: nnbolts has no "
                          f"multi-tensor {name} (foreach=True runs the one-tensor rule)")
                    continue
                ours, theirs = compare(ours_cls, torch_cls, kwargs, sizes, device, foreach,
                                       args.steps, args.warmup)
                ratio = ours / theirs
                verdict = "ok" if ratio <= TARGET else "MISSED"
                if ratio > TARGET:
                    misses.append(f"{name}/{pieces}/{path}")
                print(f"{row} {ours:>10.3f} {theirs:>9.3f} {ratio:>6.2f}  <= {TARGET} {verdict}")
    print()
    print("ratio = nnbolts ms / torch ms. In the foreach rows without nnbolts, 'torch ms' is "
          "torch's foreach time (for reference only).")
    print("Targets missed: " + (", ".join(misses) if misses else "none"))


if __name__ == "__main__":
    main()
