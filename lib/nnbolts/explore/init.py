"""The initialization explorer: a grid of small classifiers, one per (scheme, activation, depth).

For every initialization scheme of :data:`SCHEMES` (zero, too small, Glorot/Xavier, He, LeCun,
too large, the sigmoid ×4 rule), every hidden activation of :data:`ACTIVATIONS` (sigmoid, tanh,
ReLU) and every depth (number of hidden layers), :func:`init_grid` builds the network
``models.mlp([2, width, ..., width, 1], activation, scheme)`` — every weight drawn by
:mod:`nnbolts.init` through ``models.mlp``, every bias zero — on the standardised two-moons data
of :func:`moons`, and records

* at initialization, for every hidden layer, a histogram of its outputs (the activations) and a
  histogram of ``log10 |∂L/∂a|``, the back-propagated gradient of the loss with respect to them,
  both as counts on fixed bins (:data:`GRAD_EDGES`, :func:`activation_edges`; values outside
  the range are counted in the end bins, zeros in the first gradient bin);
* the training loss (mean binary cross-entropy of the logits) of every step of full-batch
  gradient descent with momentum (``optim.sgd_step`` with :data:`LR` and :data:`MOMENTUM`);
* after training, the predicted probability of class 1 on a coarse grid of the plane
  (:data:`BOUNDARY_RES` × :data:`BOUNDARY_RES` points over :data:`BOUNDARY_LIMITS`).

All the networks of one depth are trained together as one batched computation: their weights are
stacked along a first dimension (one ``torch.baddbmm`` per layer), the loss is the sum of the
networks' own losses (so each network gets exactly its own gradient), and each stacked tensor is
updated by the pure rule ``nnbolts.optim.sgd_step``, which acts elementwise — the same update as
``optim.SGD`` on every network separately. Network ``(scheme, activation)`` of seed ``n`` draws
its weights from ``seeds.generator(n)``, so any cell can be rebuilt alone with ``models.mlp``.

:func:`init_chart` turns a grid into an Altair (Vega-Lite) chart with three labelled controls
(scheme, activation, depth) that select among the precomputed cells; the page does no training.

Explained in: book/initialization.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from nnbolts import activations, data, models, optim, seeds
from nnbolts._checks import check_int

__all__ = [
    "ACTIVATIONS",
    "BOUNDARY_LIMITS",
    "BOUNDARY_RES",
    "DEPTHS",
    "GRAD_EDGES",
    "InitGrid",
    "LOSS_EVERY",
    "LR",
    "MOMENTUM",
    "SCHEMES",
    "STEPS",
    "WIDTH",
    "activation_edges",
    "boundary_points",
    "chart_data",
    "histogram",
    "init_chart",
    "init_grid",
    "moons",
]

#: Scheme label -> the ``init`` argument of ``models.mlp`` (every one a function of nnbolts.init).
SCHEMES: dict[str, object] = {
    "zero": "zeros",
    "too small N(0, 0.01²)": ("normal", {"std": 0.01}),
    "Glorot/Xavier": ("xavier_uniform", {"gain": 1.0}),
    "He": ("kaiming_normal", {"nonlinearity": "relu"}),
    "LeCun": "lecun_normal",
    "too large N(0, 3²)": ("normal", {"std": 3.0}),
    "sigmoid ×4 (Glorot × 4)": ("xavier_uniform", {"gain": 4.0}),
}
ACTIVATIONS = ("sigmoid", "tanh", "relu")
DEPTHS = (2, 4, 8)
WIDTH = 16
STEPS = 300
LR = 0.05
MOMENTUM = 0.9
N_SAMPLES = 200
BOUNDARY_RES = 25
BOUNDARY_LIMITS = (-2.5, 2.5)
HIST_BINS = 24
#: Edges of the gradient histograms, in log10 |∂L/∂a|: half-decade bins from 1e-14 to 1e2.
GRAD_EDGES = torch.linspace(-14.0, 2.0, 33, dtype=torch.float64)


def activation_edges(activation: str) -> torch.Tensor:
    """Fixed edges of the activation histograms: the output range of ``activation``
    (ReLU's cut at 3), :data:`HIST_BINS` bins."""
    lo, hi = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 3.0)}[activation]
    return torch.linspace(lo, hi, HIST_BINS + 1, dtype=torch.float64)


def histogram(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Counts of ``values`` (..., M) in the bins of ``edges`` along the last dimension, as int64
    of shape (..., len(edges) - 1). Values below the first edge (and -inf) count in the first
    bin, values above the last edge (and +inf) in the last; NaN is not counted."""
    edges = edges.to(values.device, torch.float64)
    v = values.to(torch.float64)
    finite = ~torch.isnan(v)
    inner = edges[1:-1].contiguous()
    idx = torch.bucketize(v.nan_to_num(0.0).contiguous(), inner, right=True)
    counts = torch.zeros(*v.shape[:-1], len(edges) - 1, dtype=torch.int64, device=v.device)
    counts.scatter_add_(-1, idx, finite.to(torch.int64))
    return counts


def moons(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The explorer's data: ``data.make_moons(200, noise=0.1)`` from ``seeds.generator(seed)``,
    each coordinate standardised to mean 0 and standard deviation 1; labels as float (N, 1)."""
    X, y = data.make_moons(N_SAMPLES, noise=0.1, generator=seeds.generator(seed))
    X = (X - X.mean(0)) / X.std(0)
    return X, y.float().unsqueeze(1)


def boundary_points() -> torch.Tensor:
    """The (BOUNDARY_RES², 2) points where the trained networks' probability is recorded, row by
    row: point ``i * BOUNDARY_RES + j`` has x2 = level i and x1 = level j of the linspace."""
    axis = torch.linspace(*BOUNDARY_LIMITS, BOUNDARY_RES)
    x2, x1 = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x1.flatten(), x2.flatten()], dim=1)


@dataclass
class InitGrid:
    """What :func:`init_grid` computed; every dict is keyed by ``(scheme, activation, depth)``.

    The first dimension of every tensor is the replica (``R = replicas``). ``act_hist[key]`` and
    ``grad_hist[key]``: int64 (R, depth, bins) counts per hidden layer at initialization;
    ``loss[key]``: float32 (R, steps + 1) training loss, entry ``s`` the loss before update
    ``s + 1`` (the last entry after all updates); ``prob[key]``: float32 (R, BOUNDARY_RES²)
    probability of class 1 at :func:`boundary_points` after training. ``X`` (R, N, 2) and ``t``
    (R, N, 1) are the replicas' data.
    """

    schemes: tuple[str, ...]
    activations: tuple[str, ...]
    depths: tuple[int, ...]
    seed: int
    replicas: int
    steps: int
    X: torch.Tensor
    t: torch.Tensor
    act_hist: dict = field(default_factory=dict)
    grad_hist: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    prob: dict = field(default_factory=dict)


def _check_subset(name: str, values, allowed) -> tuple:
    if isinstance(values, (str, int)) or not hasattr(values, "__iter__"):
        raise TypeError(f"expected {name} to be a list of choices from {list(allowed)}, "
                        f"got {values!r}")
    values = tuple(values)
    if not values:
        raise ValueError(f"Invalid {name}: empty (expected some of {list(allowed)})")
    for v in values:
        if v not in allowed:
            raise ValueError(f"Invalid {name}: {v!r} (expected one of {list(allowed)})")
    if len(set(values)) != len(values):
        raise ValueError(f"Invalid {name}: {values!r} has duplicates")
    return values


def _stack(nets) -> list[torch.Tensor]:
    """[W1, b1, W2, b2, ...] of ``nets`` stacked along a new first dimension; b as (S, 1, n)."""
    linears = [[m for m in net if isinstance(m, torch.nn.Linear)] for net in nets]
    params = []
    for layer in zip(*linears):
        params.append(torch.stack([m.weight.detach() for m in layer]))
        params.append(torch.stack([m.bias.detach() for m in layer]).unsqueeze(1))
    return params


def _apply(kind: str, h: torch.Tensor, groups) -> torch.Tensor:
    """``fn`` (kind="fn") or ``grad`` (kind="grad") of each group's nnbolts activation, applied to
    its slice of the stack; ``groups`` lists (activation name, number of networks) in order."""
    parts, start = [], 0
    for name, count in groups:
        parts.append(getattr(activations.get_activation(name), kind)(h[start:start + count]))
        start += count
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def _forward(params, X, groups):
    """Logits (S, N, 1) of the stacked networks and every hidden layer's pre-activation z and
    output a = phi(z), each (S, N, width)."""
    h, zs, hs = X, [], []
    for i in range(0, len(params), 2):
        z = torch.baddbmm(params[i + 1], h, params[i].transpose(1, 2))
        if i + 2 == len(params):
            return z, zs, hs
        h = _apply("fn", z, groups)
        zs.append(z)
        hs.append(h)
    raise AssertionError("unreachable")


def _backward(params, X, t, logits, zs, hs, groups):
    """Backpropagation by hand, all networks at once, for the mean binary cross-entropy of each
    network: the gradients [dL/dW1, dL/db1, ...] (shaped like ``params``) and dL/da for every
    hidden layer's output a (what autograd would give for ``losses.sum()``)."""
    n = X.shape[1]
    delta = (activations.sigmoid(logits) - t) / n          # dL/dlogit of the mean BCE
    grads, d_hidden = [None] * len(params), [None] * len(hs)
    inputs = [X, *hs]
    for layer in range(len(params) // 2 - 1, -1, -1):
        W = params[2 * layer]
        grads[2 * layer] = torch.bmm(delta.transpose(1, 2), inputs[layer])
        grads[2 * layer + 1] = delta.sum(dim=1, keepdim=True)
        if layer == 0:
            break
        d_a = torch.bmm(delta, W)                                # dL/da of layer - 1's output
        d_hidden[layer - 1] = d_a
        delta = d_a * _apply("grad", zs[layer - 1], groups)
    return grads, d_hidden


def _losses(logits, t):
    """Mean binary cross-entropy of each network's logits: (S,)."""
    return F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean(dim=(1, 2))


def init_grid(schemes=tuple(SCHEMES), activations_=ACTIVATIONS, depths=DEPTHS, *,
              seed: int = 0, replicas: int = 1, steps: int = STEPS) -> InitGrid:
    """Compute the explorer's grid (see the module docstring) for the given choices.

    ``schemes``: labels of :data:`SCHEMES`; ``activations_``: names of :data:`ACTIVATIONS`;
    ``depths``: numbers of hidden layers (1 to 16); ``replicas``: how many independent draws of
    data and weights, replica ``r`` drawing its data from ``seeds.generator(seed + r)`` and the
    weights of every one of its networks from ``seeds.generator(seed + r + 1)`` (the chapter's
    convention); ``steps``: number of gradient-descent updates. Runs on the CPU in float32; all
    networks of one depth, every replica included, form one batch.
    """
    schemes = _check_subset("schemes", schemes, SCHEMES)
    acts = _check_subset("activations_", activations_, ACTIVATIONS)
    if isinstance(depths, (str, int)) or not hasattr(depths, "__iter__"):
        raise TypeError(f"expected depths to be a list of ints, got {depths!r}")
    depths = tuple(check_int("depths", d, low=1) for d in depths)
    if not depths or any(d > 16 for d in depths) or len(set(depths)) != len(depths):
        raise ValueError(f"Invalid depths: {depths!r} (expected distinct ints from 1 to 16)")
    seed = check_int("seed", seed, low=0)
    replicas = check_int("replicas", replicas, low=1)
    steps = check_int("steps", steps, low=0)

    data_r = [moons(seed + r) for r in range(replicas)]
    grid = InitGrid(schemes, acts, depths, seed, replicas, steps,
                    torch.stack([X for X, _ in data_r]), torch.stack([t for _, t in data_r]))
    points = boundary_points()
    per_act = len(schemes) * replicas
    groups = [(a, per_act) for a in acts]
    for depth in depths:
        sizes = [2] + [WIDTH] * depth + [1]
        # stacking order: activation, then scheme, then replica
        order = [(s, a, r) for a in acts for s in schemes for r in range(replicas)]
        nets = [models.mlp(sizes, a, SCHEMES[s], generator=seeds.generator(seed + r + 1))
                for s, a, r in order]
        params = _stack(nets)
        S = len(order)
        rep = torch.tensor([r for _, _, r in order])
        Xs, ts = grid.X[rep], grid.t[rep]

        # at initialization: per-layer histograms of the activations and of dL/da
        logits, zs, hs = _forward(params, Xs, groups)
        _, d_hidden = _backward(params, Xs, ts, logits, zs, hs, groups)
        a_all = torch.stack([h.flatten(1) for h in hs], dim=1)             # (S, depth, N * width)
        g_all = torch.stack([g.flatten(1) for g in d_hidden], dim=1).abs().log10()
        act_hist = torch.stack([histogram(a_all[i], activation_edges(a)) for i, (_, a, _)
                                in enumerate(order)])
        grad_hist = histogram(g_all, GRAD_EDGES)

        # training: full-batch gradient descent, all networks of this depth at once
        states = [optim.sgd_init(p) for p in params]
        losses = []
        for _ in range(steps):
            logits, zs, hs = _forward(params, Xs, groups)
            losses.append(_losses(logits, ts))
            g, _ = _backward(params, Xs, ts, logits, zs, hs, groups)
            for j in range(len(params)):
                params[j], states[j] = optim.sgd_step(params[j], g[j], states[j], lr=LR,
                                                      momentum=MOMENTUM)
        losses.append(_losses(_forward(params, Xs, groups)[0], ts))
        prob = activations.sigmoid(_forward(params, points.expand(S, -1, -1), groups)[0])[..., 0]
        losses = torch.stack(losses, dim=1)                                  # (S, steps + 1)
        for a in acts:
            for scheme in schemes:
                idx = [i for i, (s2, a2, _) in enumerate(order) if (s2, a2) == (scheme, a)]
                key = (scheme, a, depth)
                grid.act_hist[key] = act_hist[idx]
                grid.grad_hist[key] = grad_hist[idx]
                grid.loss[key] = losses[idx]
                grid.prob[key] = prob[idx]
    return grid


def _round(values, digits: int = 4) -> list:
    """Plain floats with ``digits`` significant digits; NaN and ±inf become None (JSON null)."""
    out = []
    for v in values:
        v = float(v)
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


#: Every how many steps the page keeps a point of the loss curves.
LOSS_EVERY = 3


def chart_data(grid: InitGrid, replica: int = 0) -> dict[str, list[dict]]:
    """The rows the chart filters, for replica ``replica`` of ``grid``, columnar and rounded.

    ``hist``: one row per (scheme, activation, depth, hidden layer, kind) with the bin counts
    ``c`` and the bins' ``lo`` and ``width``; ``loss``: one row per run with the loss of every
    :data:`LOSS_EVERY`-th step (4 significant digits, null where not finite); ``prob``: one row
    per run with the trained network's probability of class 1 at :func:`boundary_points`
    (2 decimals, null where not finite); ``points``: the replica's training data.
    """
    replica = check_int("replica", replica, low=0)
    if replica >= grid.replicas:
        raise ValueError(f"Invalid replica: {replica} (the grid has {grid.replicas})")
    hist, loss, prob = [], [], []
    g_lo, g_w = float(GRAD_EDGES[0]), float(GRAD_EDGES[1] - GRAD_EDGES[0])
    for (scheme, act, depth), counts in grid.act_hist.items():
        key = {"scheme": scheme, "activation": act, "depth": depth}
        edges = activation_edges(act)
        a_lo, a_w = float(edges[0]), float(edges[1] - edges[0])
        grads = grid.grad_hist[(scheme, act, depth)][replica]
        for layer in range(depth):
            hist.append({**key, "layer": layer + 1, "kind": "activation", "lo": a_lo,
                         "width": a_w, "c": counts[replica, layer].tolist()})
            hist.append({**key, "layer": layer + 1, "kind": "gradient", "lo": g_lo,
                         "width": g_w, "c": grads[layer].tolist()})
        curve = grid.loss[(scheme, act, depth)][replica, ::LOSS_EVERY]
        loss.append({**key, "loss": _round(curve)})
        p = grid.prob[(scheme, act, depth)][replica]
        diverged = not bool(torch.isfinite(grid.loss[(scheme, act, depth)][replica]).all())
        prob.append({**key, "p": [round(v, 2) if math.isfinite(v) else None for v in p.tolist()],
                     "diverged": diverged})
    X, t = grid.X[replica], grid.t[replica]
    points = [{"x1": a, "x2": b, "class": int(c)}
              for a, b, c in zip(_round(X[:, 0], 3), _round(X[:, 1], 3), t[:, 0].tolist())]
    return {"hist": hist, "loss": loss, "prob": prob, "points": points}


def init_chart(grid: InitGrid, replica: int = 0, *, scheme: str | None = None,
               activation: str | None = None, depth: int | None = None):
    """The explorer as an Altair chart, for replica ``replica`` of ``grid``.

    Three controls, each with a text label — the scheme (drop-down list), the activation and the
    depth (radio buttons) — select one cell of the grid; ``scheme``, ``activation`` and ``depth``
    are the initial choices (default: He, relu, the deepest). Four panels show it: the
    histograms of every hidden layer's outputs and of ``log10 |∂L/∂a|`` at initialization (one
    line per layer), the training loss against the step (every scheme of this activation and
    depth in grey, the chosen one in colour; log scale) and the probability of class 1 after
    training on a coarse grid with the training points.
    """
    import altair as alt

    if not isinstance(grid, InitGrid):
        raise TypeError(f"expected grid to be an InitGrid, got {type(grid).__name__}")
    scheme = scheme if scheme is not None else ("He" if "He" in grid.schemes else grid.schemes[0])
    activation = activation if activation is not None else (
        "relu" if "relu" in grid.activations else grid.activations[0])
    depth = depth if depth is not None else max(grid.depths)
    if scheme not in grid.schemes:
        raise ValueError(f"Invalid scheme: {scheme!r} (the grid has {list(grid.schemes)})")
    if activation not in grid.activations:
        raise ValueError(f"Invalid activation: {activation!r} "
                         f"(the grid has {list(grid.activations)})")
    if depth not in grid.depths:
        raise ValueError(f"Invalid depth: {depth!r} (the grid has {list(grid.depths)})")
    rows = chart_data(grid, replica)

    p_scheme = alt.param(name="scheme", value=scheme, bind=alt.binding_select(
        options=list(grid.schemes), name="Initialization scheme: "))
    p_act = alt.param(name="activation", value=activation, bind=alt.binding_radio(
        options=list(grid.activations), name="Hidden activation: "))
    p_depth = alt.param(name="depth", value=depth, bind=alt.binding_radio(
        options=list(grid.depths), name="Hidden layers: "))
    same_net = ((alt.datum.activation == p_act) & (alt.datum.depth == p_depth))
    chosen = same_net & (alt.datum.scheme == p_scheme)
    size = {"width": 250, "height": 180}
    layer_colour = alt.Color("layer:O", title="hidden layer",
                             scale=alt.Scale(scheme="viridis"),
                             legend=alt.Legend(orient="right"))

    def histograms(kind: str, x_title: str, title: str):
        return (
            alt.Chart(alt.Data(name="hist"), title=title)
            .transform_filter(chosen & (alt.datum.kind == kind))
            .transform_flatten(["c"])
            .transform_window(bin="row_number()", groupby=["layer"])
            .transform_joinaggregate(total="sum(c)", groupby=["layer"])
            .transform_calculate(x=alt.datum.lo + (alt.datum.bin - 0.5) * alt.datum.width,
                                 share=alt.datum.c / alt.datum.total)
            .mark_line(interpolate="step", strokeWidth=1.5)
            .encode(x=alt.X("x:Q", title=x_title),
                    y=alt.Y("share:Q", title="share of the layer's entries"),
                    color=layer_colour,
                    tooltip=["layer:O", alt.Tooltip("x:Q", format=".2f"),
                             alt.Tooltip("share:Q", format=".3f")])
            .properties(**size)
        )

    h_act = histograms("activation", "layer output a (the end bins hold all beyond)",
                       "Activations at initialization")
    h_grad = histograms("gradient", "log10 |∂L/∂a| (first bin: ≤ 1e-14, zeros too)",
                        "Back-propagated gradients at initialization")

    step_x = alt.X("step:Q", title="gradient-descent step")
    loss_y = alt.Y("loss:Q", title="training loss (log scale)", scale=alt.Scale(type="log"))
    def curves(which):
        return (
            alt.Chart(alt.Data(name="loss"))
            .transform_filter(which)
            .transform_flatten(["loss"])
            .transform_window(index="row_number()", groupby=["scheme"])
            .transform_calculate(step=(alt.datum.index - 1) * LOSS_EVERY)
            .transform_filter("isValid(datum.loss) && datum.loss > 0")
        )

    others = (curves(same_net & (alt.datum.scheme != p_scheme))
              .mark_line(color="#bbbbbb", strokeWidth=1)
              .encode(x=step_x, y=loss_y, detail="scheme:N",
                      tooltip=["scheme:N", "step:Q", alt.Tooltip("loss:Q", format=".3g")]))
    mine = (curves(chosen)
            .mark_line(color="#d55e00", strokeWidth=2.5)
            .encode(x=step_x, y=loss_y,
                    tooltip=["scheme:N", "step:Q", alt.Tooltip("loss:Q", format=".3g")]))
    loss_chart = alt.layer(others, mine, title="Training loss (chosen scheme in orange)"
                           ).properties(**size)

    lo, hi = BOUNDARY_LIMITS
    cell = (hi - lo) / (BOUNDARY_RES - 1)
    x1 = alt.X("x1:Q", title="x1 (standardised)", scale=alt.Scale(domain=[lo - cell / 2,
                                                                           hi + cell / 2]))
    x2 = alt.Y("x2:Q", title="x2 (standardised)", scale=alt.Scale(domain=[lo - cell / 2,
                                                                           hi + cell / 2]))
    shading = (
        alt.Chart(alt.Data(name="prob"))
        .transform_filter(chosen)
        .transform_flatten(["p"])
        .transform_window(index="row_number()")
        .transform_calculate(
            x1=lo + ((alt.datum.index - 1) % BOUNDARY_RES) * cell - cell / 2,
            x1e=lo + ((alt.datum.index - 1) % BOUNDARY_RES) * cell + cell / 2,
            x2=lo + alt.expr.floor((alt.datum.index - 1) / BOUNDARY_RES) * cell - cell / 2,
            x2e=lo + alt.expr.floor((alt.datum.index - 1) / BOUNDARY_RES) * cell + cell / 2)
        .transform_filter("isValid(datum.p)")
        .mark_rect()
        .encode(x=x1, x2="x1e:Q", y=x2, y2="x2e:Q",
                color=alt.Color("p:Q", title="P(class 1)",
                                scale=alt.Scale(scheme="blueorange", domain=[0, 1])),
                tooltip=[alt.Tooltip("p:Q", title="P(class 1)")])
    )
    dots = (
        alt.Chart(alt.Data(name="points"))
        .mark_point(filled=True, size=18, stroke="black", strokeWidth=0.5)
        .encode(x=x1, y=x2,
                shape=alt.Shape("class:N", title="class",
                                scale=alt.Scale(range=["circle", "triangle-up"])),
                fill=alt.Fill("class:N", title="class",
                              scale=alt.Scale(range=["#0072b2", "#e69f00"])))
    )
    note = (
        alt.Chart(alt.Data(name="prob"))
        .transform_filter(chosen & alt.datum.diverged)
        .mark_text(fontSize=13, fontWeight="bold", color="black")
        .encode(x=alt.value(150), y=alt.value(100),
                text=alt.value("loss overflowed: no prediction"))
    )
    boundary = alt.layer(shading, dots, note,
                         title="After training: P(class 1) and the training points"
                         ).properties(width=190, height=180)

    chart = (
        alt.vconcat(alt.hconcat(h_act, h_grad), alt.hconcat(loss_chart, boundary))
        .add_params(p_scheme, p_act, p_depth)
        .resolve_scale(color="independent", fill="independent", shape="independent")
        .properties(title=alt.TitleParams(
            text="Initialization explorer",
            subtitle=f"2-{WIDTH}-...-{WIDTH}-1 networks on the two moons, {grid.steps} steps of "
                     f"gradient descent with momentum (η = {LR}, μ = {MOMENTUM})",
            anchor="start"))
    )
    chart["datasets"] = rows   # set after building: validating ~100k numbers takes a second
    return chart
