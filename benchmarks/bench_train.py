"""Benchmark of the training layer: data feeding and fit's overhead, against baselines timed in
the same run.

(a) One epoch of minibatches over 60000 x 784 float32 rows (MNIST-sized) at batch 64:

    nnbolts.data.minibatches       vs  DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
                                   vs  perm = torch.randperm(N); X[perm[i:i+64]], y[...]  (floor)

    targets: minibatches >= 3x faster than DataLoader, <= 1.2x the bare loop.

(b) One epoch of nnbolts.train.fit vs the hand-written loop doing the same work (same model,
    optimizer, batches and loss: zero_grad, forward, loss, backward, step). target: <= 1.05x.

Methods are timed round-robin (one epoch of each per round, after a warm-up round) and the
median per-epoch time is reported, which damps drift from other work on the machine.

Run: ``python benchmarks/bench_train.py`` (``--quick`` for a smaller smoke run).
Explained in: book/minibatch.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nnbolts.data import minibatches
from nnbolts.train import fit


def epoch_minibatches(X, y, batch, generator):
    count = 0
    for xb, _ in minibatches(X, y, batch, generator=generator):
        count += xb.shape[0]
    return count


def epoch_dataloader(loader):
    count = 0
    for xb, _ in loader:
        count += xb.shape[0]
    return count


def epoch_bare(X, y, batch, generator):
    count = 0
    perm = torch.randperm(X.shape[0], generator=generator)
    for i in range(0, X.shape[0], batch):
        idx = perm[i : i + batch]
        xb, _ = X[idx], y[idx]
        count += xb.shape[0]
    return count


def round_robin(methods: dict, rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time one call of each method per round; return the per-call times after the warm-up."""
    times = {name: [] for name in methods}
    for r in range(warmup + rounds):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if r >= warmup:
                times[name].append(elapsed)
    return times


def bench_data(n: int, d: int, batch: int, rounds: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch, shuffle=True,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    gen_mb, gen_bare = torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)
    times = round_robin(
        {
            "minibatches": lambda: epoch_minibatches(X, y, batch, gen_mb),
            "DataLoader(TensorDataset, shuffle=True)": lambda: epoch_dataloader(loader),
            "bare randperm + index loop": lambda: epoch_bare(X, y, batch, gen_bare),
        },
        rounds,
    )
    med = {name: statistics.median(v) for name, v in times.items()}
    mb = med["minibatches"]
    dl = med["DataLoader(TensorDataset, shuffle=True)"]
    bare = med["bare randperm + index loop"]
    print(f"\n(a) one epoch of {n} x {d} float32 at batch {batch}, median of {rounds} rounds")
    print(f"  {'method':<42} {'median s':>10} {'min s':>9} {'max s':>9}")
    for name, values in times.items():
        print(f"  {name:<42} {med[name]:>10.4f} {min(values):>9.4f} {max(values):>9.4f}")
    speedup, vs_floor = dl / mb, mb / bare
    print(f"  DataLoader / minibatches = {speedup:6.2f}x   (target >= 3x: "
          f"{'met' if speedup >= 3 else 'NOT met'})")  # fmt: skip
    print(f"  minibatches / bare loop  = {vs_floor:6.2f}x   (target <= 1.2x: "
          f"{'met' if vs_floor <= 1.2 else 'NOT met'})")  # fmt: skip
    return {"dataloader_over_minibatches": speedup, "minibatches_over_bare": vs_floor}


def bench_fit(n: int, d: int, batch: int, rounds: int) -> float:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    model_fit = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 10))
    model_hand = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 10))
    model_hand.load_state_dict(model_fit.state_dict())
    opt_fit = torch.optim.SGD(model_fit.parameters(), lr=0.01, momentum=0.9)
    opt_hand = torch.optim.SGD(model_hand.parameters(), lr=0.01, momentum=0.9)
    gen_fit, gen_hand = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)

    def one_fit_epoch():
        fit(model_fit, F.cross_entropy, opt_fit, (X, y), epochs=1, batch_size=batch,
            generator=gen_fit, progress=False)  # fmt: skip

    def one_hand_epoch():
        model_hand.train()
        for xb, yb in minibatches(X, y, batch, generator=gen_hand):
            opt_hand.zero_grad()
            loss = F.cross_entropy(model_hand(xb), yb)
            loss.backward()
            opt_hand.step()

    times = round_robin({"fit": one_fit_epoch, "hand-written loop": one_hand_epoch}, rounds)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"\n(b) one training epoch, MLP {d}-128-10, SGD(momentum=0.9), batch {batch}, "
          f"{n} rows, median of {rounds} rounds")  # fmt: skip
    print(f"  {'method':<42} {'median s':>10} {'min s':>9} {'max s':>9}")
    for name, values in times.items():
        print(f"  {name:<42} {med[name]:>10.4f} {min(values):>9.4f} {max(values):>9.4f}")
    ratio = med["fit"] / med["hand-written loop"]
    print(f"  fit / hand-written loop  = {ratio:6.3f}x   (target <= 1.05x: "
          f"{'met' if ratio <= 1.05 else 'NOT met'})")  # fmt: skip
    same = all(torch.equal(a, b) for a, b in zip(model_fit.parameters(), model_hand.parameters()))
    print(f"  identical parameters after the same epochs: {same}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="timed epochs per method")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: all usable cores)")  # fmt: skip
    parser.add_argument("--part", choices=("all", "data", "fit"), default="all",
                        help="run only (a) data feeding or (b) fit's overhead")  # fmt: skip
    args = parser.parse_args()
    n, d, batch = (6000, 784, 64) if args.quick else (60000, 784, 64)
    rounds = args.rounds or (3 if args.quick else 7)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(args.threads or cores)
    print(f"torch {torch.__version__} on {platform.machine()} {platform.system()}, "
          f"{torch.get_num_threads()} threads (cores available: {cores}), CPU tensors")  # fmt: skip
    if args.part in ("all", "data"):
        bench_data(n, d, batch, rounds)
    if args.part in ("all", "fit"):
        bench_fit(n, d, batch, max(rounds, 5))


if __name__ == "__main__":
    main()
