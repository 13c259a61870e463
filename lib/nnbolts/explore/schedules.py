r"""The schedules explorer: learning-rate schedules and the training runs they give.

The grid: every schedule of :data:`KINDS`, each with three settings of its main parameter
(:func:`make_schedule` says which), at every peak rate of :data:`PEAKS`, plus the constant rate
at each peak, trains the digits network of book/schedules.md — a ReLU MLP 64 → 64 → 10
(``nnbolts.models.mlp``, seed ``seed``) on the training split of ``nnbolts.data.load_digits``
(60/20/20, stratified, split seed 0) with SGD, momentum 0.9, minibatches of 32, for ``epochs``
epochs. All runs start from the same weights and see the same minibatches (the data order of
``nnbolts.train.fit`` with ``generator=seeds.generator(100 + seed)``), so they differ only by
their schedule.

The runs are trained together: their weights are stacked along a first "run" dimension and the
forward pass is one batched matrix product (``torch.baddbmm``) per layer. The update is
``nnbolts.optim.sgd_step`` on the stacked tensors: SGD's momentum buffer
:math:`b \leftarrow \mu b + g` does not depend on the rate, so one call at rate 1 gives every
run's :math:`-b`, and each run moves by its own rate's share, :math:`\theta - \eta_t b`, with
:math:`\eta_t` from that run's ``nnbolts.schedules`` schedule (the rule ``fit(...,
schedule=...)`` applies to ``nnbolts.optim.SGD``).
:func:`schedule_grid` returns the rate and the minibatch loss of every step of every run;
:func:`schedule_chart` draws the explorer (the chapter shows it with
``nnbolts.explore.explorer``). tests/test_explore_schedules.py retrains sampled runs one at a
time with ``nnbolts.train.fit`` and compares.

Explained in: book/schedules.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import data, models, seeds
from .. import schedules as S
from ..optim import sgd_init, sgd_step

__all__ = ["KINDS", "PEAKS", "SETTINGS", "ScheduleGrid", "digits_split", "make_schedule",
           "schedule_chart", "schedule_grid"]

#: The schedules one can choose, in the order of the explorer's list (their display names).
KINDS = {
    "step": "step decay (per epoch)",
    "exponential": "exponential",
    "inverse_time": "1/t (inverse time)",
    "linear": "linear",
    "polynomial": "polynomial",
    "cosine": "cosine",
    "warmup_cosine": "warmup + cosine",
    "cosine_restarts": "cosine with warm restarts",
    "one_cycle": "one-cycle",
}
#: Peak (initial) learning rates: a log grid.
PEAKS = (0.01, 0.03, 0.1, 0.3, 1.0)
#: Each schedule's main parameter takes three values, numbered 1 (gentlest) to 3.
SETTINGS = (1, 2, 3)
MOMENTUM = 0.9
BATCH_SIZE = 32
HIDDEN = 64


def make_schedule(kind: str, setting: int, peak: float, *, epochs: int,
                  steps_per_epoch: int) -> tuple[S.Schedule, str]:
    """The schedule ``kind`` at peak rate ``peak`` with its parameter at ``setting`` (1, 2 or
    3; 0 for ``"constant"``), for a run of ``epochs * steps_per_epoch`` steps, and a one-line
    description of it.

    ============== ============================================ ======================
    kind           schedule                                     setting 1 / 2 / 3
    ============== ============================================ ======================
    step           ``per_epoch(step_decay(peak, 4, gamma))``     gamma 0.5 / 0.2 / 0.1
    exponential    ``exponential(peak, gamma)``, gamma per step  ends at peak × 0.1 / 0.01 / 0.001
    inverse_time   ``inverse_time(peak, rate, steps_per_epoch)`` rate 0.25 / 1 / 4 per epoch
    linear         ``linear(peak, final, total)``                final peak × 0.1 / 0.01 / 0
    polynomial     ``polynomial(peak, total, 0, power)``          power 0.5 / 2 / 4
    cosine         ``cosine(peak, total, final)``                 final peak × 0.1 / 0.01 / 0
    warmup_cosine  ``warmup(cosine(peak, total - w), w)``         w = 1 / 2 / 4 epochs
    cosine_restarts ``cosine_restarts(peak, period)``             period = total / 2, 3, 4
    one_cycle      ``one_cycle(peak, total, pct_start)``          pct_start 0.1 / 0.3 / 0.5
    ============== ============================================ ======================
    """
    if kind != "constant" and kind not in KINDS:
        raise ValueError(f"Invalid kind: {kind!r} (expected 'constant' or one of {list(KINDS)})")
    if kind == "constant":
        if setting != 0:
            raise ValueError(f"Invalid setting: {setting!r} (the constant rate has only 0)")
        return S.constant(peak), f"constant η = {peak:g}"
    if setting not in SETTINGS:
        raise ValueError(f"Invalid setting: {setting!r} (expected one of {SETTINGS})")
    i, n, total = setting - 1, steps_per_epoch, epochs * steps_per_epoch
    if kind == "step":
        gamma = (0.5, 0.2, 0.1)[i]
        return (S.per_epoch(S.step_decay(peak, step_size=4, gamma=gamma), n),
                f"step decay: × {gamma:g} every 4 epochs")
    if kind == "exponential":
        fraction = (0.1, 0.01, 0.001)[i]
        gamma = fraction ** (1 / (total - 1))
        return (S.exponential(peak, gamma),
                f"exponential: × {gamma:.4f} per step, to peak × {fraction:g}")
    if kind == "inverse_time":
        rate = (0.25, 1.0, 4.0)[i]
        return (S.inverse_time(peak, decay_rate=rate, decay_steps=n),
                f"1/t: peak / (1 + {rate:g} × epochs done)")
    if kind == "linear":
        fraction = (0.1, 0.01, 0.0)[i]
        return (S.linear(peak, final_lr=peak * fraction, total_steps=total),
                f"linear: to peak × {fraction:g} at the end")
    if kind == "polynomial":
        power = (0.5, 2.0, 4.0)[i]
        return (S.polynomial(peak, total_steps=total, final_lr=0.0, power=power),
                f"polynomial: power {power:g}, to 0 at the end")
    if kind == "cosine":
        fraction = (0.1, 0.01, 0.0)[i]
        return (S.cosine(peak, total_steps=total, final_lr=peak * fraction),
                f"cosine: to peak × {fraction:g} at the end")
    if kind == "warmup_cosine":
        w = (1, 2, 4)[i]
        if w >= epochs:
            raise ValueError(f"Invalid epochs: {epochs} (warmup_cosine {setting} warms up for {w})")
        return (S.warmup(S.cosine(peak, total_steps=total - w * n), w * n),
                f"warmup for {w} epoch{'s' * (w > 1)}, then cosine to 0")
    if kind == "cosine_restarts":
        cycles = (2, 3, 4)[i]
        return (S.cosine_restarts(peak, first_period=max(1, total // cycles)),
                f"cosine with warm restarts: {cycles} cycles")
    pct = (0.1, 0.3, 0.5)[i]
    return (S.one_cycle(peak, total_steps=total, pct_start=pct),
            f"one-cycle: rises for the first {pct:.0%} of the steps")


def digits_split(device="cpu"):
    """The digits training split of book/schedules.md: ``(X_train, y_train)``."""
    X, y = data.load_digits(device=device)
    (X_train, y_train), _, _ = data.train_val_test_split(
        X, y, (0.6, 0.2, 0.2), generator=seeds.generator(0), stratify=True)
    return X_train, y_train


@dataclass
class ScheduleGrid:
    """Runs ``runs[r] = (kind, setting, peak)`` and, per run and step, the learning rate used
    (``lr[r, t]``) and the minibatch's mean cross-entropy before the update (``loss[r, t]``:
    ``History.step_loss`` of ``fit``; ``inf``/``nan`` once a run has diverged)."""

    runs: list[tuple[str, int, float]]
    labels: list[str]
    lr: np.ndarray
    loss: np.ndarray
    epochs: int
    steps_per_epoch: int
    seed: int
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def index(self, kind: str, setting: int, peak: float) -> int:
        return self.runs.index((kind, setting, peak))

    def epoch_loss(self) -> np.ndarray:
        """Mean minibatch loss of each epoch, ``[runs, epochs]`` (``fit``'s ``train_loss``
        when the batches are equal; the last, shorter batch weighs by its size here too)."""
        return self.extra["epoch_loss"]


def _check_choices(name, values, allowed):
    values = tuple(values)
    if not values:
        raise ValueError(f"Invalid {name}: empty")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"Invalid {name}: {bad} (expected values from {list(allowed)})")
    return values


def schedule_grid(*, seed: int = 0, epochs: int = 12, kinds=tuple(KINDS), settings=SETTINGS,
                  peaks=PEAKS, constant: bool = True, hidden: int = HIDDEN) -> ScheduleGrid:
    """Train every ``(kind, setting, peak)`` (and the constant rate at every peak, unless
    ``constant=False``) together; see the module's docstring. ``seed`` is the chapter's seed
    ``n`` (through ``nnbolts.seeds``): network ``seeds.generator(seed)``, data order
    ``seeds.generator(100 + seed)``."""
    import time

    kinds = _check_choices("kinds", kinds, KINDS)
    settings = _check_choices("settings", settings, SETTINGS)
    peaks = tuple(float(p) for p in peaks)
    if not peaks or any(not (p > 0 and math.isfinite(p)) for p in peaks):
        raise ValueError(f"Invalid peaks: {peaks} (expected positive finite rates)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Invalid epochs: {epochs!r} (expected a positive int)")
    began = time.perf_counter()
    X, y = digits_split()
    n = data.num_batches(len(X), BATCH_SIZE)
    total = epochs * n
    runs = [(k, s, p) for k in kinds for s in settings for p in peaks]
    if constant:
        runs += [("constant", 0, p) for p in peaks]
    made = [make_schedule(k, s, p, epochs=epochs, steps_per_epoch=n) for k, s, p in runs]
    schedules = [m[0] for m in made]
    lr = np.stack([S.lr_at(s, total) for s in schedules])

    net = models.mlp([X.shape[1], hidden, 10], "relu", generator=seeds.generator(seed))
    R = len(runs)
    # W1, b1, W2, b2 of every run, stacked: [R, ...], all runs from the same weights
    params = [p.detach().expand(R, *p.shape).clone().requires_grad_(True)
              for p in net.parameters()]
    states = [sgd_init(p) for p in params]
    rates = torch.from_numpy(lr).to(params[0].dtype)  # [R, T]
    loss = np.empty((R, total))
    sizes = []
    order = seeds.generator(100 + seed)
    t = 0
    for _ in range(epochs):
        for xb, yb in data.minibatches(X, y, BATCH_SIZE, generator=order):
            W1, b1, W2, b2 = params
            xs = xb.expand(R, *xb.shape)
            hidden_out = torch.relu(torch.baddbmm(b1.unsqueeze(1), xs, W1.transpose(1, 2)))
            logits = torch.baddbmm(b2.unsqueeze(1), hidden_out, W2.transpose(1, 2))
            per_run = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(R),
                                      reduction="none").view(R, -1).mean(1)
            for p in params:
                p.grad = None
            per_run.sum().backward()  # runs are independent: each gets its own gradient
            with torch.no_grad():
                for i, p in enumerate(params):
                    # SGD's buffer b does not depend on the rate: the step at rate 1 is -b,
                    # and each run takes its own rate's share of it, θ - η_t b.
                    moved, states[i] = sgd_step(p, p.grad, states[i], lr=1.0,
                                                momentum=MOMENTUM)
                    eta = rates[:, t].view(R, *([1] * (p.dim() - 1)))
                    p.add_((moved - p) * eta)
            loss[:, t] = per_run.detach().double().numpy()
            sizes.append(len(yb))
            t += 1
    weights = np.array(sizes, dtype=float).reshape(epochs, n)
    with np.errstate(invalid="ignore", over="ignore"):
        epoch_loss = (loss.reshape(R, epochs, n) * weights).sum(2) / weights.sum(1)
    return ScheduleGrid(runs=runs, labels=[m[1] for m in made], lr=lr, loss=loss, epochs=epochs,
                        steps_per_epoch=n, seed=seed, seconds=time.perf_counter() - began,
                        extra={"epoch_loss": epoch_loss})


def _round(values, digits: int = 4) -> list:
    """Floats to ``digits`` significant digits; nan and inf (a diverged run) to None."""
    out = []
    for v in np.asarray(values, dtype=float).tolist():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def schedule_chart(grid: ScheduleGrid, *, lr_every: int = 2, default=("cosine", 2, 0.3)):
    """The explorer: a list of schedules, a setting slider (1-3, the schedule's main
    parameter, described above the plots) and the peak rate (radio buttons, a log grid). Left,
    the learning rate against the step (every ``lr_every``-th step); right, the training loss
    (mean over each epoch, log scale); the constant rate at the same peak in grey for
    comparison. The data are columnar (one row per run, arrays flattened in the spec)."""
    import altair as alt

    kinds = [k for k in KINDS if any(run[0] == k for run in grid.runs)]
    settings = sorted({s for k, s, _ in grid.runs if k != "constant"})
    peaks = sorted({p for _, _, p in grid.runs})
    kind, setting, peak = default
    if (kind, setting, peak) not in grid.runs:
        kind, setting, peak = next(run for run in grid.runs if run[0] != "constant")
    steps = list(range(0, grid.lr.shape[1], lr_every))
    epochs = list(range(1, grid.epochs + 1))
    rows = []
    for r, (k, s, p) in enumerate(grid.runs):
        rows.append({
            "kind": k, "setting": s, "peak": p, "label": grid.labels[r],
            "run": "constant rate (same peak)" if k == "constant" else "chosen schedule",
            "step": steps, "lr": _round(grid.lr[r, steps]),
            "epoch": epochs, "loss": _round(grid.epoch_loss()[r]),
        })
    kind_param = alt.param(name="kind", value=kind, bind=alt.binding_select(
        options=kinds, labels=[KINDS[k] for k in kinds], name="Schedule: "))
    setting_param = alt.param(name="setting", value=setting, bind=alt.binding_range(
        min=min(settings), max=max(settings), step=1,
        name="Its main parameter, 1 (gentle) to 3 (strong): "))
    peak_param = alt.param(name="peak", value=peak, bind=alt.binding_radio(
        options=peaks, labels=[f"{p:g}\u00a0\u00a0" for p in peaks],  # spaced apart
        name="Peak learning rate η₀: "))
    chosen = ("(datum.kind == kind && datum.setting == setting || datum.kind == 'constant')"
              " && datum.peak == peak")
    runs = alt.Data(name="runs")  # the rows are set once, after building (see the end)
    base = alt.Chart(runs).transform_filter(chosen)
    colour = alt.Color("run:N", title=None, scale=alt.Scale(
        domain=["chosen schedule", "constant rate (same peak)"], range=["#0072B2", "#999999"]),
        legend=alt.Legend(orient="bottom"))
    dash = alt.StrokeDash("run:N", title=None, legend=alt.Legend(orient="bottom"), scale=alt.Scale(
        domain=["chosen schedule", "constant rate (same peak)"], range=[[1, 0], [5, 3]]))
    rate = base.transform_flatten(["step", "lr"]).mark_line().encode(
        x=alt.X("step:Q", title="step (update)"),
        y=alt.Y("lr:Q", title="learning rate"),
        color=colour, strokeDash=dash,
    ).properties(width=250, height=200, title="Learning rate at each step")
    loss = base.transform_flatten(["epoch", "loss"]).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[1, grid.epochs])),
        y=alt.Y("loss:Q", title="training loss (mean over the epoch)",
                scale=alt.Scale(type="log")),
        color=colour, strokeDash=dash,
        tooltip=[alt.Tooltip("epoch:Q"), alt.Tooltip("loss:Q", format=".4f")],
    ).properties(width=250, height=200, title="Training loss of the digits network")
    caption = alt.Chart(runs).transform_filter(
        "datum.kind == kind && datum.setting == setting && datum.peak == peak"
    ).mark_text(align="left", fontSize=13).encode(
        text="label:N", x=alt.value(0), y=alt.value(8),
    ).properties(width=560, height=16)
    chart = alt.vconcat(caption, alt.hconcat(rate, loss)).add_params(
        kind_param, setting_param, peak_param,
    ).properties(title=alt.Title(
        "Learning-rate schedules: the rate, and the training loss it gives",
        subtitle=f"SGD, momentum {MOMENTUM}, batches of {BATCH_SIZE}, {grid.epochs} epochs; "
                 "all runs: same start, same batches"),
    ).configure_view(stroke=None)
    # Set after building: Altair validates inline values once per view that holds them.
    chart["datasets"] = {"runs": rows}
    return chart
