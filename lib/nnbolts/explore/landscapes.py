r"""Explorers of optimizers on loss landscapes: the grids behind them and their Altair charts.

Two explorers use this module:

* ``optimizers`` (book/optimizers.md): SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam on
  Rosenbrock's valley, Beale's function, the ill-conditioned quadratic and the saddle, for
  every learning rate of a log grid, every value of each rule's second hyper-parameter
  (momentum :math:`\mu`, RMSProp's :math:`\rho`, Adam's :math:`\beta_1`) and a few starts per
  landscape. :func:`optimizer_grid` computes one landscape's runs, :func:`optimizers_chart`
  draws them (paths on the contour, loss against steps beside it).
* ``quartic`` (book/gradient_descent.md): gradient descent on the book's 1-D quartic for a log
  grid of learning rates that straddles :math:`2/f''` at both minima, a few momenta, an
  optional exponential decay and a few starts. :func:`quartic_grid` and :func:`quartic_chart`.

How the runs are batched. All runs of one landscape (every rule, value of its second
hyper-parameter, learning rate and start) are one float64 tensor of points, shape
``(..., starts, dim)``, and their gradients are one autograd call per step
(:meth:`nnbolts.landscapes.Landscape.gradient`). The update is the rule's pure step function
from :mod:`nnbolts.optim` (``sgd_step``, ``adagrad_step``, ``rmsprop_step``, ``adam_step``),
called once per (rule, value, learning rate) on the slice of all starts: these functions take a
Python learning rate, and the element-wise rules treat each start independently. So every run
is, operation for operation, the run ``descend(landscape, optim.SGD, x0, steps, lr=...,
momentum=...)`` (or the rule's class) makes: ``tests/test_explore_landscapes.py`` recomputes
sampled cells that way and asks for equality.

A run that leaves the plotted box (the landscape's ``bounds`` widened by half their width on
each side) or becomes non-finite is recorded up to its first point outside and NaN after it;
``left`` says where. The charts subsample the steps (``stride``) and round to 4 significant
digits to keep the page small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .. import optim, schedules
from .._checks import check_choice, check_int, check_number
from ..landscapes import Landscape, get_landscape

__all__ = [
    "RULES",
    "EXPLORER_LANDSCAPES",
    "LOG_LR_GRID",
    "OptimizerGrid",
    "optimizer_grid",
    "optimizers_data",
    "optimizers_chart",
    "optimizers_spec",
    "QuarticGrid",
    "QUARTIC_LOG_LRS",
    "QUARTIC_MOMENTA",
    "QUARTIC_DECAYS",
    "QUARTIC_STARTS",
    "quartic_grid",
    "quartic_data",
    "quartic_chart",
    "quartic_spec",
]


# --- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One optimizer of the explorer: its label, its pure ``*_init``/``*_step`` pair from
    :mod:`nnbolts.optim`, and its second hyper-parameter (``None`` if it has none)."""

    label: str
    init: object
    step: object
    hyper: str | None = None  # the label of the second hyper-parameter, e.g. "momentum μ"
    values: tuple[float, ...] = ()
    default: float | None = None

    def kwargs(self, value) -> dict:
        """The keyword arguments of ``step`` for the second hyper-parameter ``value``."""
        name = self.label
        if name == "momentum":
            return {"momentum": value}
        if name == "Nesterov":
            return {"momentum": value, "nesterov": True}
        if name == "RMSProp":
            return {"alpha": value}
        if name == "Adam":
            return {"betas": (value, 0.999)}
        return {}


#: The optimizers of the ``optimizers`` explorer, in the order of its controls.
RULES: dict[str, Rule] = {
    "sgd": Rule("SGD", optim.sgd_init, optim.sgd_step),
    "momentum": Rule("momentum", optim.sgd_init, optim.sgd_step, "momentum μ", (0.5, 0.9, 0.99),
                     0.9),
    "nesterov": Rule("Nesterov", optim.sgd_init, optim.sgd_step, "momentum μ",
                     (0.5, 0.9, 0.99), 0.9),
    "adagrad": Rule("AdaGrad", optim.adagrad_init, optim.adagrad_step),
    "rmsprop": Rule("RMSProp", optim.rmsprop_init, optim.rmsprop_step, "decay ρ", (0.9, 0.99),
                    0.9),
    "adam": Rule("Adam", optim.adam_init, optim.adam_step, "β₁", (0.0, 0.9, 0.99), 0.9),
}

#: Learning rates of the ``optimizers`` explorer: 10^k for k = -4, -3.5, ..., 0.
LOG_LR_GRID: tuple[float, ...] = tuple(-4.0 + 0.5 * k for k in range(9))

#: landscape -> (starts, steps, stride of the drawn points, contour resolution)
EXPLORER_LANDSCAPES: dict[str, tuple[tuple[tuple[float, float], ...], int, int]] = {
    "rosenbrock": (((-1.5, 2.5), (-1.0, -0.5), (1.5, 0.5)), 200, 3),
    "beale": (((1.0, 1.5), (-2.0, 2.0), (3.5, -1.0)), 150, 3),
    "ill_conditioned": (((-2.5, 1.5), (2.5, 2.5), (-1.0, -2.5)), 80, 1),
    "saddle": (((-1.5, 0.01), (-1.5, 0.0), (-1.5, 0.5)), 50, 1),
}


def _view_box(landscape: Landscape) -> torch.Tensor:
    """Low and high corners of the box a run may visit before it counts as gone: the plotted
    ``bounds`` widened by half their width on each side. Shape ``(2, dim)``."""
    box = torch.tensor(landscape.bounds, dtype=torch.float64)
    width = box[:, 1] - box[:, 0]
    return torch.stack([box[:, 0] - width / 2, box[:, 1] + width / 2])


def _record(xs_new: torch.Tensor, alive: torch.Tensor, low, high):
    """The point to record for each run and whether the run goes on after it: a run that
    leaves the box or turns non-finite is recorded once more (its first point outside, NaN if
    not finite) and then NaN."""
    finite = torch.isfinite(xs_new).all(-1)
    inside = finite & ((xs_new >= low) & (xs_new <= high)).all(-1)
    recorded = torch.where((alive & finite).unsqueeze(-1), xs_new, torch.nan)
    return recorded, alive & inside


@dataclass
class OptimizerGrid:
    """Every run of the ``optimizers`` explorer on one landscape.

    ``combos`` lists the (rule key, value of its second hyper-parameter or ``None``) pairs in
    the order of the first axis of ``xs`` (shape ``(C, L, S, steps + 1, 2)``: combination,
    learning rate ``10**log_lrs[l]``, start, step) and ``losses`` (``(C, L, S, steps + 1)``,
    f at each recorded point). Entries after a run left the view box are NaN.
    """

    landscape: str
    combos: list[tuple[str, float | None]]
    log_lrs: tuple[float, ...]
    starts: tuple[tuple[float, float], ...]
    steps: int
    xs: torch.Tensor
    losses: torch.Tensor
    stride: int = 1

    def run(self, rule: str, value, log_lr: float, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(xs, losses)`` of one run: shapes ``(steps + 1, 2)`` and ``(steps + 1,)``."""
        c = self.combos.index((rule, value))
        lr_index = min(range(len(self.log_lrs)), key=lambda i: abs(self.log_lrs[i] - log_lr))
        if abs(self.log_lrs[lr_index] - log_lr) > 1e-9:
            raise ValueError(f"log_lr {log_lr} is not on the grid {self.log_lrs}")
        return self.xs[c, lr_index, start], self.losses[c, lr_index, start]


def _check_rules(rules) -> tuple[str, ...]:
    if isinstance(rules, str) or not isinstance(rules, Sequence) or not rules:
        raise TypeError(f"expected rules to be a non-empty sequence of names, got {rules!r}")
    for rule in rules:
        check_choice("rule", rule, RULES)
    return tuple(rules)


def _check_log_lrs(log_lrs) -> tuple[float, ...]:
    if not isinstance(log_lrs, Sequence) or not log_lrs:
        raise TypeError(f"expected log_lrs to be a non-empty sequence of numbers, got {log_lrs!r}")
    for value in log_lrs:
        check_number("log_lrs entry", value, low=-12.0, high=2.0)
    return tuple(float(v) for v in log_lrs)


def _check_starts(starts, dim: int) -> tuple[tuple[float, ...], ...]:
    if not isinstance(starts, Sequence) or not starts:
        raise TypeError(f"expected starts to be a non-empty sequence of points, got {starts!r}")
    out = []
    for point in starts:
        if isinstance(point, (int, float)) and dim == 1:
            point = (point,)
        if not isinstance(point, Sequence) or len(point) != dim:
            raise ValueError(f"each entry of starts must have {dim} coordinates, got {point!r}")
        for value in point:
            check_number("starts coordinate", value)
        out.append(tuple(float(v) for v in point))
    return tuple(out)


def optimizer_grid(
    landscape: str,
    *,
    rules: Sequence[str] = tuple(RULES),
    log_lrs: Sequence[float] = LOG_LR_GRID,
    starts: Sequence[Sequence[float]] | None = None,
    steps: int | None = None,
) -> OptimizerGrid:
    """All runs of ``rules`` on ``landscape``: every learning rate ``10**log_lrs``, every value
    of each rule's second hyper-parameter (:data:`RULES`) and every start, ``steps`` steps each.

    ``starts`` and ``steps`` default to the explorer's (:data:`EXPLORER_LANDSCAPES`). The runs
    are computed in float64 as one batch (see the module's docstring).
    """
    name = check_choice("landscape", landscape, EXPLORER_LANDSCAPES)
    scape = get_landscape(name)
    default_starts, default_steps, stride = EXPLORER_LANDSCAPES[name]
    rules = _check_rules(rules)
    log_lrs = _check_log_lrs(log_lrs)
    starts = _check_starts(default_starts if starts is None else starts, 2)
    steps = check_int("steps", default_steps if steps is None else steps, low=1)

    combos = [(rule, value) for rule in rules for value in (RULES[rule].values or (None,))]
    n_c, n_l, n_s = len(combos), len(log_lrs), len(starts)
    lrs = [10.0**e for e in log_lrs]
    x = torch.tensor(starts, dtype=torch.float64).expand(n_c, n_l, n_s, 2).clone()
    low, high = _view_box(scape)
    states = [[RULES[rule].init(x[c, la]) for la in range(n_l)]
              for c, (rule, _) in enumerate(combos)]
    kwargs = [RULES[rule].kwargs(value) for rule, value in combos]
    alive = torch.ones(n_c, n_l, n_s, dtype=torch.bool)
    points = [x.clone()]
    for _ in range(steps):
        grad = scape.gradient(x)  # every run of the landscape in one autograd call
        x_new = torch.empty_like(x)
        for c, (rule, _) in enumerate(combos):
            for la, lr in enumerate(lrs):
                # the rule's pure step with this run's learning rate, for every start at once
                x_new[c, la], states[c][la] = RULES[rule].step(x[c, la], grad[c, la],
                                                               states[c][la], lr=lr, **kwargs[c])
        recorded, alive_next = _record(x_new, alive, low, high)
        x = torch.where(alive_next.unsqueeze(-1), x_new, x)
        alive = alive_next
        points.append(recorded)
    xs = torch.stack(points, dim=3)
    with torch.no_grad():
        losses = scape.f(torch.nan_to_num(xs, nan=0.0))
    losses = torch.where(torch.isnan(xs).any(-1), torch.nan, losses)
    return OptimizerGrid(name, combos, log_lrs, starts, steps, xs, losses, stride)


# --- compact JSON rows ------------------------------------------------------------------------


def _round(value: float, digits: int = 4):
    """``value`` to ``digits`` significant digits, ``None`` (JSON null) if not finite."""
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits - 1}e}")


def _trimmed(values: list[float]) -> list:
    """``values`` up to the last finite one, rounded."""
    last = max((i for i, v in enumerate(values) if math.isfinite(v)), default=-1)
    return [_round(v) for v in values[: last + 1]]


def _contour_rows(scape: Landscape, resolution: int) -> dict:
    """A coarse grid of ``scape`` as one columnar row: cell centres ``x``, ``y`` and the level
    ``z`` (0-19: the rank of f among the cells, in twenty equal-count bands, so that every
    landscape shows its valleys whatever its range)."""
    (xlo, xhi), (ylo, yhi) = scape.bounds
    dx, dy = (xhi - xlo) / resolution, (yhi - ylo) / resolution
    xc = torch.linspace(xlo + dx / 2, xhi - dx / 2, resolution, dtype=torch.float64)
    yc = torch.linspace(ylo + dy / 2, yhi - dy / 2, resolution, dtype=torch.float64)
    gx, gy = torch.meshgrid(xc, yc, indexing="xy")
    with torch.no_grad():
        z = scape.f(torch.stack([gx, gy], -1)).flatten()
    rank = torch.empty_like(z, dtype=torch.long)
    rank[z.argsort()] = torch.arange(z.numel())
    level = (rank * 20 // z.numel()).tolist()
    return {"l": scape.name, "dx": _round(dx), "dy": _round(dy),
            "x": [_round(v) for v in gx.flatten().tolist()],
            "y": [_round(v) for v in gy.flatten().tolist()], "z": level}


def optimizers_data(grids: Sequence[OptimizerGrid], *, resolution: int = 40) -> dict:
    """The explorer's data from ``grids``: ``runs`` (one row per run, its points subsampled
    every ``grid.stride`` steps: ``l`` landscape, ``s`` start index, ``o`` rule key, ``e``
    log10 of the learning rate, ``h`` second hyper-parameter or null, ``k`` the stride,
    ``x``, ``y``, ``f`` the arrays), ``contours`` (one columnar row per landscape) and
    ``marks`` (starts and minima, one row each)."""
    runs, contours, marks = [], [], []
    for grid in grids:
        scape = get_landscape(grid.landscape)
        contours.append(_contour_rows(scape, resolution))
        keep = list(range(0, grid.steps + 1, grid.stride))
        if keep[-1] != grid.steps:
            keep.append(grid.steps)
        for c, (rule, value) in enumerate(grid.combos):
            for li, e in enumerate(grid.log_lrs):
                for s in range(len(grid.starts)):
                    xs = grid.xs[c, li, s][keep]
                    f = grid.losses[c, li, s][keep]
                    runs.append({"l": grid.landscape, "s": s, "o": rule, "e": e, "h": value,
                                 "k": grid.stride, "x": _trimmed(xs[:, 0].tolist()),
                                 "y": _trimmed(xs[:, 1].tolist()), "f": _trimmed(f.tolist())})
        for s, (sx, sy) in enumerate(grid.starts):
            marks.append({"l": grid.landscape, "s": s, "kind": "start", "x": sx, "y": sy})
        for mx, my in scape.minima:
            marks.append({"l": grid.landscape, "s": -1, "kind": "minimum", "x": mx, "y": my})
        for mx, my in scape.saddle_points:
            marks.append({"l": grid.landscape, "s": -1, "kind": "saddle point", "x": mx, "y": my})
    return {"runs": runs, "contours": contours, "marks": marks}


# Okabe & Ito's colour-blind-safe palette (without yellow, which vanishes on a light contour)
_COLOURS = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7")

_SYMLOG_TICKS = [-1e4, -1e3, -100, -10, -1, 0, 0.01, 0.1, 1, 10, 100, 1e3, 1e4, 1e5, 1e6]

_LANDSCAPE_LABELS = {
    "rosenbrock": "Rosenbrock's valley",
    "beale": "Beale's function",
    "ill_conditioned": "ill-conditioned quadratic (κ = 10)",
    "saddle": "saddle x² − y²",
}


def _fmt(value: float) -> str:
    return f"{value:g}"


def optimizers_chart(grids: Sequence[OptimizerGrid] | None = None, *, resolution: int = 40,
                     shown: Sequence[str] = ("sgd", "momentum", "adam")):
    """The ``optimizers`` explorer as an Altair chart, its data inline (see
    :func:`_optimizers_chart` for what it shows; :func:`optimizers_spec` gives the same figure
    as a Vega-Lite dict, several seconds faster)."""
    chart, datasets = _optimizers_chart(grids, resolution=resolution, shown=shown)
    return chart.properties(datasets=datasets)


def optimizers_spec(grids: Sequence[OptimizerGrid] | None = None, *, resolution: int = 40,
                    shown: Sequence[str] = ("sgd", "momentum", "adam")) -> dict:
    """:func:`optimizers_chart` as a Vega-Lite spec (a dict, what ``explorer`` takes): the
    chart is validated by Altair without its data, which is then added as the spec's
    ``datasets`` (Altair's validation of a megabyte of plain numbers takes seconds)."""
    chart, datasets = _optimizers_chart(grids, resolution=resolution, shown=shown)
    spec = chart.to_dict()
    spec["datasets"] = datasets
    return spec


def _optimizers_chart(grids, *, resolution, shown):
    """The ``optimizers`` explorer: ``(chart without its data, datasets)``.

    Controls: the landscape, the start, and per rule a checkbox (show it), its learning rate
    (log10, a range slider on :data:`LOG_LR_GRID`) and, where it has one, its second
    hyper-parameter (a select). Left: the landscape's coarse contour with the paths of the
    checked rules; right: f against the step. ``grids`` default to one
    :func:`optimizer_grid` per landscape of :data:`EXPLORER_LANDSCAPES`.
    """
    import altair as alt

    if grids is None:
        grids = [optimizer_grid(name) for name in EXPLORER_LANDSCAPES]
    if not grids:
        raise ValueError("grids must hold at least one OptimizerGrid")
    for rule in shown:
        check_choice("shown rule", rule, RULES)
    data = optimizers_data(grids, resolution=resolution)
    names = [grid.landscape for grid in grids]
    rules = [key for key in RULES if any(key == rule for rule, _ in grids[0].combos)]
    log_lrs = grids[0].log_lrs
    n_starts = len(grids[0].starts)
    for grid in grids[1:]:
        if grid.log_lrs != log_lrs or len(grid.starts) != n_starts:
            raise ValueError("every grid must have the same log_lrs and number of starts")

    landscape = alt.param(
        name="landscape", value=names[0],
        bind=alt.binding_select(options=names, labels=[_LANDSCAPE_LABELS.get(n, n) for n in names],
                                name="Landscape: "))
    start = alt.param(
        name="start", value=0,
        bind=alt.binding_radio(options=list(range(n_starts)),
                               labels=[f"start {i + 1}" for i in range(n_starts)],
                               name="Start (marked ○ on the map): "))
    params = [landscape, start]
    clauses = []
    default_lr = {"sgd": -3.0, "momentum": -3.0, "nesterov": -3.0,
                  "adagrad": -1.0, "rmsprop": -2.0, "adam": -1.0}
    for key in rules:
        rule = RULES[key]
        show = alt.param(name=f"show_{key}", value=key in shown,
                         bind=alt.binding_checkbox(name=f"Show {rule.label} "))
        rate = alt.param(name=f"lr_{key}", value=default_lr.get(key, log_lrs[len(log_lrs) // 2]),
                         bind=alt.binding_range(min=log_lrs[0], max=log_lrs[-1],
                                                step=log_lrs[1] - log_lrs[0] if len(log_lrs) > 1
                                                else 1.0,
                                                name=f"{rule.label}: log₁₀ learning rate "))
        params += [show, rate]
        clause = (f"(datum.o == '{key}' && show_{key} && abs(datum.e - lr_{key}) < 1e-6")
        if rule.values:
            hyper = alt.param(name=f"h_{key}", value=rule.default,
                              bind=alt.binding_select(options=list(rule.values),
                                                      labels=[_fmt(v) for v in rule.values],
                                                      name=f"{rule.label}: {rule.hyper} "))
            params.append(hyper)
            clause += f" && datum.h == h_{key}"
        clauses.append(clause + ")")
    run_filter = (f"datum.l == landscape && datum.s == start && ({' || '.join(clauses)})")
    labels = {key: RULES[key].label for key in rules}
    label_expr = " : ".join(f"datum.o == '{k}' ? '{v}'" for k, v in labels.items()) + " : ''"
    colour = alt.Color("optimizer:N", title="optimizer",
                       scale=alt.Scale(domain=[labels[k] for k in rules],
                                       range=list(_COLOURS[: len(rules)])),
                       legend=alt.Legend(orient="bottom", columns=3))

    runs = (alt.Chart(alt.NamedData("optimizer_runs"))
            .transform_filter(run_filter)
            .transform_calculate(optimizer=label_expr, run="datum.o")
            .transform_flatten(["x", "y", "f"])
            .transform_window(index="row_number()", groupby=["run"])
            .transform_calculate(step="(datum.index - 1) * datum.k")
            .transform_filter("isValid(datum.x) && isValid(datum.y)"))
    contour = (alt.Chart(alt.NamedData("optimizer_contours"))
               .transform_filter("datum.l == landscape")
               .transform_flatten(["x", "y", "z"])
               .transform_calculate(x0="datum.x - datum.dx / 2", x1="datum.x + datum.dx / 2",
                                    y0="datum.y - datum.dy / 2", y1="datum.y + datum.dy / 2")
               .mark_rect()
               .encode(x=alt.X("x0:Q", title="x", scale=alt.Scale(zero=False, nice=False)),
                       x2="x1:Q",
                       y=alt.Y("y0:Q", title="y", scale=alt.Scale(zero=False, nice=False)),
                       y2="y1:Q",
                       color=alt.Color("z:Q", title="f (rank, low to high)",
                                       scale=alt.Scale(scheme=alt.SchemeParams("greys",
                                                                             extent=[0.05, 0.6]),
                                                       domain=[0, 19]),
                                       legend=None)))
    paths = runs.mark_line(point=alt.OverlayMarkDef(size=12), clip=True, strokeWidth=1.8).encode(
        x="x:Q", y="y:Q", order="step:Q", color=colour,
        tooltip=[alt.Tooltip("optimizer:N"), alt.Tooltip("step:Q"),
                 alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g"),
                 alt.Tooltip("f:Q", format=".4g")])
    marks = alt.Chart(alt.NamedData("optimizer_marks")).transform_filter(
        "datum.l == landscape && (datum.s == start || datum.s < 0)")
    mark_points = marks.mark_point(size=140, strokeWidth=2, filled=False, clip=True).encode(
        x="x:Q", y="y:Q",
        shape=alt.Shape("kind:N", title="", scale=alt.Scale(
            domain=["start", "minimum", "saddle point"], range=["circle", "diamond", "cross"]),
            legend=alt.Legend(orient="bottom")),
        color=alt.value("#CC79A7"))
    left = (contour + paths + mark_points).properties(
        width=300, height=300, title="Paths on the landscape (darker = higher f)")
    loss = runs.transform_filter("isValid(datum.f)").mark_line(clip=True, strokeWidth=1.8).encode(
        x=alt.X("step:Q", title="step t"),
        y=alt.Y("f:Q", title="f(x_t) (symmetric log scale)",
                scale=alt.Scale(type="symlog", constant=0.01),
                axis=alt.Axis(values=_SYMLOG_TICKS, format="~g")),
        color=alt.Color("optimizer:N", scale=alt.Scale(domain=[labels[k] for k in rules],
                                                       range=list(_COLOURS[: len(rules)])),
                        legend=None)).properties(
        width=210, height=300, title="Loss against steps")
    # One line per optimizer with its current settings, so that every control shows its value
    # (also for a hidden optimizer) in words.
    setting = []
    for key in rules:
        rule = RULES[key]
        text = (f"'{rule.label}: ' + (show_{key} ? '' : '(hidden) ') + 'learning rate ' + "
                f"format(pow(10, lr_{key}), '.2~g')")
        if rule.values:
            text += f" + ', {rule.hyper} ' + h_{key}"
        setting.append(f"datum.o == '{key}' ? {text}")
    settings = (alt.Chart(alt.Data(values=[{"o": key, "optimizer": labels[key], "row": i}
                                           for i, key in enumerate(rules)]))
                .transform_calculate(text=" : ".join(setting) + " : ''")
                .mark_text(align="left", baseline="middle", fontSize=12)
                .encode(x=alt.value(4), y=alt.Y("row:O", axis=None), text="text:N",
                        color=alt.Color("optimizer:N", legend=None,
                                        scale=alt.Scale(domain=[labels[k] for k in rules],
                                                        range=list(_COLOURS[: len(rules)]))))
                .properties(width=560, height=16 * len(rules), title="Settings",
                            view=alt.ViewConfig(stroke=None)))
    datasets = {"optimizer_runs": data["runs"], "optimizer_contours": data["contours"],
                "optimizer_marks": data["marks"]}
    return (alt.vconcat(alt.hconcat(left, loss), settings).resolve_scale(color="shared")
            .add_params(*params)
            .properties(title="Optimizers on a landscape: choose the landscape, the start "
                              "and the optimizers")), datasets


# --- the quartic --------------------------------------------------------------------------

#: log10 of the quartic explorer's learning rates: 10^(k/10) for k = -15..0, 0.0316 to 1.
#: 2/f'' is 0.578 at the global minimum and 0.664 at the local one, between 10^-0.3 = 0.501,
#: 10^-0.2 = 0.631 and 10^-0.1 = 0.794.
QUARTIC_LOG_LRS: tuple[float, ...] = tuple(round(-1.5 + 0.1 * k, 1) for k in range(16))
QUARTIC_MOMENTA: tuple[float, ...] = (0.0, 0.1, 0.5, 0.9)
#: decay factors γ (η ← γη before every update); 1 is no decay
QUARTIC_DECAYS: tuple[float, ...] = (1.0, 0.99, 0.9)
QUARTIC_STARTS: tuple[float, ...] = (-5.0, -2.0, 2.0, 3.5, 5.0)


def _log_two_over_curvature(x: float) -> float:
    """log10(2/f''(x)) on the quartic: the largest stable learning rate near a minimum x."""
    point = torch.tensor([x], dtype=torch.float64)
    curvature = torch.autograd.functional.hessian(get_landscape("quartic"), point).item()
    return math.log10(2 / curvature)


def _decay_schedule(eta0: float, gamma: float):
    """η ← γη before every update (book/gradient_descent.md): the rate of update t is
    η0·γ^(t+1), nnbolts.schedules.exponential(η0·γ, γ); γ = 1 is the constant η0."""
    if gamma == 1.0:
        return schedules.constant(eta0)
    return schedules.exponential(eta0 * gamma, gamma)


@dataclass
class QuarticGrid:
    """Every run of the ``quartic`` explorer: ``xs`` and ``losses`` of shape
    ``(M, G, L, S, steps + 1)`` for momentum ``momenta[m]``, decay ``decays[g]``, learning rate
    ``10**log_lrs[l]`` (before decay) and start ``starts[s]``; NaN after a run left the box."""

    momenta: tuple[float, ...]
    decays: tuple[float, ...]
    log_lrs: tuple[float, ...]
    starts: tuple[float, ...]
    steps: int
    xs: torch.Tensor
    losses: torch.Tensor
    extra: dict = field(default_factory=dict)

    def run(self, momentum: float, decay: float, log_lr: float, start: float):
        """``(xs, losses)`` of one run, each of shape ``(steps + 1,)``."""
        index = []
        for name, grid, value in (("momentum", self.momenta, momentum),
                                  ("decay", self.decays, decay),
                                  ("log_lr", self.log_lrs, log_lr),
                                  ("start", self.starts, start)):
            hits = [i for i, v in enumerate(grid) if abs(v - value) < 1e-9]
            if not hits:
                raise ValueError(f"{name} {value} is not on the grid {grid}")
            index.append(hits[0])
        m, g, la, s = index
        return self.xs[m, g, la, s], self.losses[m, g, la, s]


def quartic_grid(
    *,
    log_lrs: Sequence[float] = QUARTIC_LOG_LRS,
    momenta: Sequence[float] = QUARTIC_MOMENTA,
    decays: Sequence[float] = QUARTIC_DECAYS,
    starts: Sequence[float] = QUARTIC_STARTS,
    steps: int = 100,
) -> QuarticGrid:
    """Gradient descent (``nnbolts.optim.sgd_step``, torch's momentum form) on the quartic for
    every momentum, decay factor, learning rate ``10**log_lrs`` and start: the runs that
    ``descend("quartic", optim.SGD, [x0], steps, lr=η0, momentum=μ,
    schedule=<η0·γ^(t+1)>)`` makes, as one batch."""
    log_lrs = _check_log_lrs(log_lrs)
    for name, values, low, high in (("momenta", momenta, 0.0, 1.0), ("decays", decays, 0.0, 1.0)):
        if not isinstance(values, Sequence) or not values:
            raise TypeError(f"expected {name} to be a non-empty sequence of numbers, got "
                            f"{values!r}")
        for value in values:
            check_number(f"{name} entry", value, low=low, high=high,
                         high_open=name == "momenta", low_open=name == "decays")
    starts = tuple(point[0] for point in _check_starts(starts, 1))
    steps = check_int("steps", steps, low=1)
    momenta, decays = tuple(float(v) for v in momenta), tuple(float(v) for v in decays)
    scape = get_landscape("quartic")
    n_m, n_g, n_l, n_s = len(momenta), len(decays), len(log_lrs), len(starts)
    rates = [[[_decay_schedule(10.0**e, gamma)(t) for t in range(steps)] for e in log_lrs]
             for gamma in decays]
    x = torch.tensor(starts, dtype=torch.float64).view(1, 1, 1, n_s, 1)
    x = x.expand(n_m, n_g, n_l, n_s, 1).clone()
    low, high = _view_box(scape)
    states = [[[optim.sgd_init(x[0, 0, 0]) for _ in log_lrs] for _ in decays] for _ in momenta]
    alive = torch.ones(n_m, n_g, n_l, n_s, dtype=torch.bool)
    points = [x.clone()]
    for t in range(steps):
        grad = scape.gradient(x)  # every run in one autograd call
        x_new = torch.empty_like(x)
        for m, mu in enumerate(momenta):
            for g in range(n_g):
                for la in range(n_l):
                    # sgd_step with this run's (scheduled) rate, for every start at once
                    x_new[m, g, la], states[m][g][la] = optim.sgd_step(
                        x[m, g, la], grad[m, g, la], states[m][g][la], lr=rates[g][la][t],
                        momentum=mu)
        recorded, alive_next = _record(x_new, alive, low, high)
        x = torch.where(alive_next.unsqueeze(-1), x_new, x)
        alive = alive_next
        points.append(recorded)
    xs = torch.stack(points, dim=4)  # (M, G, L, S, steps + 1, 1)
    with torch.no_grad():
        losses = scape.f(torch.nan_to_num(xs, nan=0.0))
    losses = torch.where(torch.isnan(xs[..., 0]), torch.nan, losses)
    return QuarticGrid(momenta, decays, log_lrs, starts, steps, xs[..., 0], losses)


def quartic_data(grid: QuarticGrid, *, resolution: int = 121) -> dict:
    """The quartic explorer's data: ``runs`` (one row per run: ``m`` momentum, ``g`` decay,
    ``e`` log10 of the learning rate, ``s`` start, ``x`` and ``f`` the arrays of every step,
    rounded, up to the last finite one) and ``curve`` (f on ``resolution`` points of
    [-6, 6], one columnar row)."""
    resolution = check_int("resolution", resolution, low=2)
    scape = get_landscape("quartic")
    cx, cf = scape.grid(resolution)
    runs = []
    for m, mu in enumerate(grid.momenta):
        for g, gamma in enumerate(grid.decays):
            for la, e in enumerate(grid.log_lrs):
                for s, x0 in enumerate(grid.starts):
                    runs.append({"m": mu, "g": gamma, "e": e, "s": x0,
                                 "x": _trimmed(grid.xs[m, g, la, s].tolist()),
                                 "f": _trimmed(grid.losses[m, g, la, s].tolist())})
    curve = {"x": [_round(v) for v in cx.tolist()], "f": [_round(v) for v in cf.tolist()]}
    return {"runs": runs, "curve": [curve]}


def quartic_chart(grid: QuarticGrid | None = None, *, resolution: int = 121):
    """The ``quartic`` explorer as an Altair chart, its data inline (:func:`quartic_spec`
    gives the same figure as a Vega-Lite dict, faster)."""
    chart, datasets = _quartic_chart(grid, resolution=resolution)
    return chart.properties(datasets=datasets)


def quartic_spec(grid: QuarticGrid | None = None, *, resolution: int = 121) -> dict:
    """:func:`quartic_chart` as a Vega-Lite spec (a dict), its data added after validation."""
    chart, datasets = _quartic_chart(grid, resolution=resolution)
    spec = chart.to_dict()
    spec["datasets"] = datasets
    return spec


def _quartic_chart(grid, *, resolution):
    """The ``quartic`` explorer, ``(chart without its data, datasets)``: controls for the
    learning rate (log10, a range slider), the momentum, the decay factor and the start; left,
    the iterates on the curve f(x); right, f against the step."""
    import altair as alt

    if grid is None:
        grid = quartic_grid()
    data = quartic_data(grid, resolution=resolution)
    runs, curve = data["runs"], data["curve"]
    scape = get_landscape("quartic")
    (xg,), (xl,) = scape.minima[0], scape.local_minima[0]
    lr_step = grid.log_lrs[1] - grid.log_lrs[0] if len(grid.log_lrs) > 1 else 1.0
    default_lr = min(grid.log_lrs, key=lambda e: abs(e + 1.0))
    rate = alt.param(name="log_lr", value=default_lr,
                     bind=alt.binding_range(min=grid.log_lrs[0], max=grid.log_lrs[-1],
                                            step=round(lr_step, 6),
                                            name="log₁₀ learning rate η (log₁₀ 2/f″ at x*: "
                                                 f"{_log_two_over_curvature(xg):.2f}) "))
    momentum = alt.param(name="momentum", value=grid.momenta[0],
                         bind=alt.binding_radio(options=list(grid.momenta),
                                                labels=[_fmt(v) for v in grid.momenta],
                                                name="Momentum μ: "))
    decay = alt.param(name="decay", value=grid.decays[0],
                      bind=alt.binding_radio(options=list(grid.decays),
                                             labels=["none" if v == 1 else _fmt(v)
                                                     for v in grid.decays],
                                             name="Decay γ (η ← γη every step): "))
    start = alt.param(name="start", value=grid.starts[-1],
                      bind=alt.binding_select(options=list(grid.starts),
                                              labels=[_fmt(v) for v in grid.starts],
                                              name="Start x₀: "))
    chosen = (alt.Chart(alt.NamedData("quartic_runs"))
              .transform_filter("abs(datum.e - log_lr) < 1e-6 && datum.m == momentum && "
                                "datum.g == decay && datum.s == start")
              .transform_flatten(["x", "f"])
              .transform_window(step="row_number()")
              .transform_calculate(step="datum.step - 1")
              .transform_filter("isValid(datum.x) && isValid(datum.f)"))
    line = (alt.Chart(alt.NamedData("quartic_curve")).transform_flatten(["x", "f"])
            .mark_line(color="#777777", clip=True)
            .encode(x=alt.X("x:Q", title="x", scale=alt.Scale(domain=[-6, 6])),
                    y=alt.Y("f:Q", title="f(x)", scale=alt.Scale(domain=[0, 15]))))
    minima = alt.Chart(alt.Data(values=[
        {"x": xg, "f": scape.min_value, "kind": "global minimum"},
        {"x": xl, "f": float(scape.f(torch.tensor([[xl]], dtype=torch.float64))[0]),
         "kind": "local minimum"}])).mark_point(shape="diamond", size=120, filled=True).encode(
        x="x:Q", y="f:Q", color=alt.Color("kind:N", title="", scale=alt.Scale(
            domain=["global minimum", "local minimum"], range=["#E69F00", "#56B4E9"]),
            legend=alt.Legend(orient="bottom")))
    path = chosen.mark_line(point=alt.OverlayMarkDef(size=18, color="#D55E00"), clip=True,
                            color="#D55E00", strokeWidth=1.0, opacity=0.8).encode(
        x="x:Q", y="f:Q", order="step:Q",
        tooltip=[alt.Tooltip("step:Q"), alt.Tooltip("x:Q", format=".4g"),
                 alt.Tooltip("f:Q", format=".4g")])
    settings = alt.Title(alt.ExprRef(
        "'Iterates x_t on f(x): η = ' + format(pow(10, log_lr), '.3~g') + ', μ = ' + momentum "
        "+ ', decay γ: ' + (decay == 1 ? 'none' : decay) + ', x₀ = ' + start"))
    left = (line + path + minima).properties(width=290, height=260, title=settings)
    right = chosen.mark_line(point=alt.OverlayMarkDef(size=10, color="#D55E00"), clip=True,
                             color="#D55E00").encode(
        x=alt.X("step:Q", title="step t", scale=alt.Scale(domain=[0, grid.steps])),
        y=alt.Y("f:Q", title="f(x_t)", scale=alt.Scale(domain=[0, 15]))).properties(
        width=210, height=260, title="f(x_t) against the step")
    return (alt.hconcat(left, right).add_params(rate, momentum, decay, start)
            .properties(title="Gradient descent on the quartic: pick η, μ, γ and the start"),
            {"quartic_runs": runs, "quartic_curve": curve})
