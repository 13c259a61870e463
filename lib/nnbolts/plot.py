"""Figures for the book: loss curves, landscapes with optimizer paths, animations that play in a
static HTML page, decision boundaries, activation functions and per-layer histograms.

Used in: book/gradient_descent.md and book/optimizers.md (:func:`plot_landscape`,
:func:`animate_trajectories`, :func:`animation_html`), book/minibatch.md and the training
chapters (:func:`plot_histories`), book/activations.md (:func:`plot_activations`),
book/initialization.md (:func:`plot_layer_stats`, :func:`plot_decision_boundary`).

Every function draws on an ``Axes`` it is given or on a new figure, returns the ``Axes`` (one
panel) or the ``Figure`` (small multiples), and never calls ``plt.show()``: in a notebook the
figure displays itself, in a script save it with ``fig.savefig``. Tensors are moved to the CPU
here and only here — plotting is where numbers leave the device.
"""

from __future__ import annotations

import html as _html
import math
import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import Animation, FuncAnimation
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.ticker import LogLocator
from torch import nn

from ._checks import check_choice, check_floating, check_int, check_tensor
from .landscapes import Landscape, Trajectory, get_landscape

__all__ = [
    "plot_histories",
    "plot_landscape",
    "animate_trajectories",
    "to_html",
    "animation_html",
    "plot_decision_boundary",
    "plot_activations",
    "plot_layer_stats",
]


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().to("cpu", torch.float64).numpy()
    return np.asarray(t, dtype=np.float64)


def _new_axes(ax, figsize=(6.0, 4.0)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _named(items, kind: str, check) -> list[tuple[str | None, object]]:
    """A single item, a mapping name -> item or a sequence of items, as ``[(name, item)]``."""
    if check(items):
        return [(None, items)]
    if isinstance(items, Mapping):
        pairs = [(str(k), v) for k, v in items.items()]
    elif isinstance(items, Sequence) and not isinstance(items, str):
        pairs = [(f"run {i}", v) for i, v in enumerate(items)]
    else:
        raise TypeError(f"expected a {kind}, a dict name -> {kind} or a list, got {items!r}")
    for name, item in pairs:
        if not check(item):
            raise TypeError(f"{name!r} is not a {kind}: {type(item).__name__}")
    if not pairs:
        raise ValueError(f"no {kind} to plot")
    return pairs


# --- training curves ----------------------------------------------------------------------


def _is_history(obj) -> bool:
    return all(hasattr(obj, a) for a in ("step_loss", "epochs", "best_epoch"))


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or values.size == 0:
        return values
    window = min(window, values.size)
    kernel = np.ones(window) / window
    # "valid" part only, so the curve does not dip at the ends; the x values shift to match.
    return np.convolve(values, kernel, mode="valid")


def plot_histories(
    histories,
    keys: Sequence[str] = ("train_loss", "val_loss"),
    *,
    per: str = "epoch",
    ax=None,
    logy: bool = False,
    smooth: int = 1,
    mark_best: bool = True,
):
    """Training curves of one or several runs.

    ``histories`` is a :class:`nnbolts.train.History` (anything with ``step_loss``,
    ``step_lr``, ``epochs``, ``best_epoch``, ``stopped_epoch``), a dict name -> History or a
    list of them.

    ``per="epoch"`` plots ``history.epochs[key]`` for each of ``keys`` against the epoch
    (counted from 1, as ``History`` counts them), one colour per run and one line style per
    key, and marks ``best_epoch`` with a dotted vertical line and a star on each curve (and
    ``stopped_epoch``, if early stopping ended the run before its last epoch, with a cross).
    ``per="step"`` plots ``step_loss`` against the step (``keys`` is not used), averaged over
    ``smooth`` consecutive steps to show the trend under minibatch noise.

    Returns the ``Axes``. Example::

        plot_histories({"SGD": h_sgd, "Adam": h_adam}, keys=("val_loss",), logy=True)
    """
    runs = _named(histories, "History", _is_history)
    check_choice("per", per, ("epoch", "step"))
    smooth = check_int("smooth", smooth, low=1)
    if isinstance(keys, str):
        keys = (keys,)
    ax = _new_axes(ax)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    drawn = 0
    for i, (name, history) in enumerate(runs):
        colour = colours[i % len(colours)]
        if per == "step":
            values = _moving_average(_np(list(history.step_loss)), smooth)
            steps = np.arange(values.size) + (min(smooth, max(len(history.step_loss), 1)) - 1)
            ax.plot(steps, values, color=colour, lw=1.2, label=name or "train loss (per step)")
            drawn += values.size > 0
            continue
        for j, key in enumerate(keys):
            series = history.epochs.get(key)
            if not series:
                continue
            values = _np(list(series))
            epochs = np.arange(1, values.size + 1)
            label = key if name is None else f"{name}: {key}"
            ax.plot(epochs, values, styles[j % len(styles)], color=colour, label=label)
            drawn += 1
            best = history.best_epoch
            if mark_best and best is not None and 1 <= best <= values.size:
                ax.plot([best], [values[best - 1]], "*", color=colour, ms=12, mec="k", mew=0.6)
        best, stopped = history.best_epoch, getattr(history, "stopped_epoch", None)
        if mark_best and best is not None:
            label = "best epoch" if name is None else f"{name}: best epoch {best}"
            ax.axvline(best, color=colour, ls=":", lw=1, label=label)
        if mark_best and stopped is not None:
            ax.axvline(stopped, color=colour, ls="-.", lw=0.8, alpha=0.6,
                       label="stopped" if name is None else f"{name}: stopped")
    if not drawn:
        available = sorted({k for _, h in runs for k in h.epochs})
        raise ValueError(
            f"nothing to plot: none of the keys {list(keys)} has values "
            f"(per={per!r}); available epoch keys: {available}"
        )
    ax.set_xlabel("epoch" if per == "epoch" else "step")
    ax.set_ylabel("loss" if all("loss" in k for k in keys) or per == "step" else "value")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax


# --- landscapes ---------------------------------------------------------------------------


def _resolve(landscape) -> Landscape:
    if isinstance(landscape, str):
        return get_landscape(landscape)
    if not isinstance(landscape, Landscape):
        raise TypeError(f"expected a Landscape or its name, got {type(landscape).__name__}")
    return landscape


def _trajectory_pairs(trajectories) -> list[tuple[str | None, Trajectory]]:
    if trajectories is None:
        return []
    return _named(trajectories, "Trajectory", lambda t: isinstance(t, Trajectory))


def _path(landscape: Landscape, run: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """The (horizontal, vertical) coordinates of a run in the landscape's plot."""
    xs = _np(run.xs)
    if landscape.dim == 1:
        return xs[:, 0], _np(run.losses)
    return xs[:, 0], xs[:, 1]


def _draw_landscape(
    landscape: Landscape, ax, levels, log: bool, resolution: int, colorbar, lines: bool = True
):
    (x_lo, x_hi), *rest = landscape.bounds
    if landscape.dim == 1:
        xs, values = landscape.grid(resolution)
        xs, values = _np(xs), _np(values)
        ax.plot(xs, values, color="0.25", lw=1.5, label="f(x)")
        for m in landscape.minima:
            v = float(landscape.f(torch.tensor([m], dtype=torch.float64)))
            ax.plot(m[0], v, "*", ms=16, color="gold", mec="k", label="global minimum")
        for m in landscape.local_minima:
            v = float(landscape.f(torch.tensor([m], dtype=torch.float64)))
            ax.plot(m[0], v, "*", ms=14, color="white", mec="k", label="local minimum")
        span = values.max() - values.min()
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(values.min() - 0.05 * span, values.max() + 0.05 * span)
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
        return
    (y_lo, y_hi) = rest[0]
    gx, gy, gz = (_np(t) for t in landscape.grid(resolution))
    if log and landscape.min_value is not None:
        # Log-spaced levels of f - min show the floor of a valley as well as its walls.
        height = np.maximum(gz - landscape.min_value, 0.0)
        top = float(height.max())
        positive = height[height > 0]
        floor = max(float(positive.min()) if positive.size else top, top * 1e-9)
        height = np.clip(height, floor, None)
        n = levels if isinstance(levels, int) else None
        lv = np.geomspace(floor, top, n) if n else np.asarray(levels, dtype=float)
        filled = ax.contourf(gx, gy, height, levels=lv, norm=LogNorm(), cmap="viridis")
        shift = "f" if landscape.min_value == 0 else f"f − {landscape.min_value:g}"
        label, ticks = f"{shift} (log scale)", LogLocator()
    else:
        filled = ax.contourf(gx, gy, gz, levels=levels, cmap="viridis")
        label, ticks = "f", None
    if lines:
        ax.contour(filled, colors="k", linewidths=0.3, alpha=0.5)
    if colorbar:
        ax.figure.colorbar(filled, ax=ax, label=label, ticks=ticks)
    for i, m in enumerate(landscape.minima):
        ax.plot(*m, "*", ms=16, color="gold", mec="k", label="minimum" if i == 0 else None)
    for i, m in enumerate(landscape.local_minima):
        ax.plot(*m, "*", ms=14, color="white", mec="k", label="local minimum" if i == 0 else None)
    for i, s in enumerate(landscape.saddle_points):
        ax.plot(*s, "X", ms=10, color="white", mec="k", label="saddle point" if i == 0 else None)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def plot_landscape(
    landscape,
    *,
    ax=None,
    levels=30,
    log: bool = True,
    trajectories=None,
    resolution: int = 200,
    colorbar: bool = False,
    title: str | None = None,
):
    """Draw a landscape and, optionally, optimizer paths on it.

    2-D: filled contours over ``landscape.bounds`` (``levels`` an int or the level values),
    log-spaced in ``f - min_value`` when ``log`` and the minimum is known; global minima as
    gold stars, local ones white, saddle points as crosses. 1-D: the curve with its minima.

    ``trajectories`` (a :class:`~nnbolts.landscapes.Trajectory`, a dict name -> Trajectory
    or a list) are drawn as lines with a marker per step and a square at the start; on a 1-D
    landscape each point is drawn at its height ``f(x)``. The view stays on the bounds, so a
    diverging run leaves the frame instead of shrinking the landscape.

    Returns the ``Axes``. Example::

        runs = {name: descend("rosenbrock", opt, steps=300, **kw) for name, (opt, kw) in ...}
        plot_landscape("rosenbrock", trajectories=runs)
    """
    landscape = _resolve(landscape)
    resolution = check_int("resolution", resolution, low=2)
    if isinstance(levels, (bool, str)) or not isinstance(levels, (int, Sequence, np.ndarray)):
        raise TypeError(f"expected levels to be an int or a sequence of levels, got {levels!r}")
    if isinstance(levels, int):
        check_int("levels", levels, low=2)
    runs = _trajectory_pairs(trajectories)
    ax = _new_axes(ax, (6.0, 5.0) if landscape.dim == 2 else (6.0, 4.0))
    _draw_landscape(landscape, ax, levels, log, resolution, colorbar)
    for name, run in runs:
        h, v = _path(landscape, run)
        (line,) = ax.plot(h, v, "-o", ms=2.5, lw=1.3, label=name or run.optimizer)
        ax.plot(h[:1], v[:1], "s", ms=7, color=line.get_color(), mec="k")
    ax.set_title(title if title is not None else landscape.description)
    if runs or landscape.minima or landscape.local_minima:
        ax.legend(fontsize="small", loc="best")
    return ax


def animate_trajectories(
    landscape,
    trajectories,
    *,
    frames: int | None = None,
    interval: int = 100,
    levels=30,
    log: bool = True,
    figsize=(5.0, 4.0),
    dpi: int = 80,
):
    """A ``matplotlib.animation.FuncAnimation`` of optimizer paths drawn step by step.

    Frame ``k`` of ``frames`` (default: one per step, at most 50) shows every run up to step
    ``round(k * n / (frames - 1))``, ``n`` the longest run's length; shorter (or diverged)
    runs stop at their last point. ``interval`` is the delay between frames in ms.

    Turn it into HTML that plays in a static page with :func:`to_html` or
    :func:`animation_html`; the default ``figsize``/``dpi`` keep each embedded PNG frame
    small. Example::

        anim = animate_trajectories("beale", {"SGD": run_sgd, "Adam": run_adam})
        html = to_html(anim)
    """
    landscape = _resolve(landscape)
    runs = _trajectory_pairs(trajectories)
    longest = max(run.steps for _, run in runs)
    if frames is None:
        frames = min(longest + 1, 50)
    frames = check_int("frames", frames, low=1)
    interval = check_int("interval", interval, low=1)
    step_of = [round(k * longest / max(frames - 1, 1)) for k in range(frames)]

    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    # No contour lines: they triple the size of every embedded PNG frame.
    _draw_landscape(landscape, ax, levels, log, 150, colorbar=False, lines=False)
    paths, lines, heads = [], [], []
    for name, run in runs:
        h, v = _path(landscape, run)
        (line,) = ax.plot([], [], "-", lw=1.5, label=name or run.optimizer)
        (head,) = ax.plot([], [], "o", ms=6, color=line.get_color(), mec="k")
        ax.plot(h[:1], v[:1], "s", ms=6, color=line.get_color(), mec="k")
        paths.append((h, v))
        lines.append(line)
        heads.append(head)
    # A fixed place: "best" is recomputed on every frame (slow) and makes the legend jump.
    ax.legend(fontsize="small", loc="upper center")
    title = ax.set_title(f"{landscape.name}: step {longest}")
    # Lay the figure out once, for the longest title, and freeze it: the frames then line up
    # and each one is cheaper to render.
    fig.canvas.draw()
    fig.set_layout_engine("none")

    def draw(k: int):
        step = step_of[k]
        for (h, v), line, head in zip(paths, lines, heads):
            last = min(step, h.size - 1)
            line.set_data(h[: last + 1], v[: last + 1])
            head.set_data(h[last : last + 1], v[last : last + 1])
        title.set_text(f"{landscape.name}: step {step}")
        return [*lines, *heads, title]

    anim = FuncAnimation(fig, draw, frames=frames, interval=interval, blit=False, repeat=True)
    # The player's text alternative (read by :func:`to_html`): what the frames show.
    names = [name or run.optimizer for name, run in runs]
    anim.alt_text = (
        f"Animation in {frames} frames: {', '.join(names)} on the {landscape.name} landscape "
        f"({landscape.description}), drawn step by step from the start to step {longest}."
    )
    return anim


# matplotlib's player links Font Awesome 4 from a CDN for its button icons: a request that
# leaves the page (and fails offline). The book's theme ships Font Awesome itself, and it
# draws the player's `<i class="fa fa-play">` icons; every button also has a title and an
# aria-label.
_OFF_PAGE_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>\s*", re.IGNORECASE)


def _player_alt(anim: Animation) -> str:
    """A text alternative for an animation made elsewhere than :func:`animate_trajectories`."""
    titles = [ax.get_title() for ax in anim._fig.axes if ax.get_title()]
    text = "Animation"
    if titles:
        text += ": " + "; ".join(titles)
    return text


def to_html(anim: Animation, *, default_mode: str = "once", alt: str | None = None) -> str:
    """The animation as a self-contained JavaScript player (``anim.to_jshtml()``).

    Every frame is embedded as a PNG in the HTML, so it plays in the static book with no
    kernel and no ffmpeg, and the page requests nothing else: matplotlib's link to Font Awesome
    on a CDN is dropped (the book's theme bundles the icons). The animation's figure is closed
    afterwards, so a notebook does not also display a stray still frame. ``default_mode`` is
    the player's initial loop setting: ``"once"``, ``"loop"`` or ``"reflect"``.

    ``alt`` is the text alternative of the player's image; by default the description
    :func:`animate_trajectories` attached to the animation (``anim.alt_text``), else the
    figure's titles.

    matplotlib stops embedding frames (with a logged warning) once the page would exceed
    ``rcParams["animation.embed_limit"]`` (20 MB): keep ``frames`` and ``dpi`` modest — the
    defaults of :func:`animate_trajectories` give about 25 kB per frame.
    """
    if not isinstance(anim, Animation):
        raise TypeError(f"expected a matplotlib Animation, got {type(anim).__name__}")
    check_choice("default_mode", default_mode, ("once", "loop", "reflect"))
    if alt is None:
        alt = getattr(anim, "alt_text", None) or _player_alt(anim)
    if not isinstance(alt, str) or not alt.strip():
        raise ValueError(f"expected alt to be a non-empty description, got {alt!r}")
    fig = anim._fig
    try:
        page = anim.to_jshtml(embed_frames=True, default_mode=default_mode)
    finally:
        plt.close(fig)
    page = _OFF_PAGE_LINK.sub("", page)
    alt_attr = _html.escape(alt.strip(), quote=True)
    return page.replace('<img id="_anim_img', f'<img alt="{alt_attr}" id="_anim_img')


def animation_html(
    landscape_or_anim,
    trajectories=None,
    *,
    default_mode: str = "once",
    alt: str | None = None,
    **kwargs,
):
    """:func:`to_html` wrapped in ``IPython.display.HTML``: the last line of a book cell.

    Give it an animation, or a landscape and trajectories (plus any keyword argument of
    :func:`animate_trajectories`); ``alt`` replaces the default text alternative::

        animation_html("rosenbrock", {"SGD": run_sgd, "Adam": run_adam}, frames=40)
    """
    from IPython.display import HTML

    if isinstance(landscape_or_anim, Animation):
        if trajectories is not None or kwargs:
            raise TypeError("pass either an animation, or a landscape with its trajectories")
        anim = landscape_or_anim
    else:
        anim = animate_trajectories(landscape_or_anim, trajectories, **kwargs)
    return HTML(to_html(anim, default_mode=default_mode, alt=alt))


# --- classifiers --------------------------------------------------------------------------


def plot_decision_boundary(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    ax=None,
    resolution: int = 200,
    padding: float = 0.1,
):
    """Regions a 2-D classifier assigns to each class, with the data on top.

    The model is evaluated on a ``resolution`` × ``resolution`` grid covering ``X`` (plus
    ``padding`` times its extent on each side), built on the model's device and dtype, under
    ``torch.no_grad()`` and in eval mode (each module's training flag is restored after).

    Outputs of shape ``(N,)`` or ``(N, 1)`` are binary logits: the probability
    ``sigmoid(logit)`` is shaded and the 0.5 level drawn. ``(N, C)`` outputs are class scores:
    each point gets its ``argmax`` class colour.

    Returns the ``Axes``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    check_floating("X", X)
    check_tensor("y", y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"expected X of shape (N, 2), got {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError("X is empty")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} labels but X has {X.shape[0]} points")
    resolution = check_int("resolution", resolution, low=2)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else X.device
    dtype = param.dtype if param is not None and param.is_floating_point() else X.dtype

    lo, hi = X.detach().amin(dim=0), X.detach().amax(dim=0)
    pad = torch.where(hi > lo, (hi - lo) * padding, torch.ones_like(hi))
    (x_lo, y_lo), (x_hi, y_hi) = (lo - pad).tolist(), (hi + pad).tolist()
    gx = torch.linspace(x_lo, x_hi, resolution, device=device, dtype=dtype)
    gy = torch.linspace(y_lo, y_hi, resolution, device=device, dtype=dtype)
    mesh_x, mesh_y = torch.meshgrid(gx, gy, indexing="xy")
    grid = torch.stack([mesh_x.reshape(-1), mesh_y.reshape(-1)], dim=1)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = model(grid)
    finally:
        for module, training in modes:
            module.training = training
    if not isinstance(out, torch.Tensor) or out.shape[0] != grid.shape[0] or out.ndim > 2:
        raise ValueError("the model must return one row of scores per input point")

    ax = _new_axes(ax, (5.5, 4.5))
    px, py = _np(mesh_x), _np(mesh_y)
    labels = _np(y).reshape(-1)
    points = _np(X)
    if out.ndim == 1 or out.shape[1] == 1:
        prob = _np(torch.sigmoid(out.reshape(resolution, resolution).float()))
        shade = ax.contourf(px, py, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(px, py, prob, levels=[0.5], colors="k", linewidths=1.5)
        ax.figure.colorbar(shade, ax=ax, label="P(class 1)")
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="RdBu_r", vmin=0, vmax=1,
                   edgecolors="k", s=18)
    else:
        n_classes = out.shape[1]
        chosen = _np(out.argmax(dim=1).reshape(resolution, resolution))
        base = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
        cmap = ListedColormap([base(i % base.N) for i in range(n_classes)])
        bounds = np.arange(n_classes + 1) - 0.5
        ax.contourf(px, py, chosen, levels=bounds, cmap=cmap, alpha=0.35)
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=cmap, vmin=-0.5,
                   vmax=n_classes - 0.5, edgecolors="k", s=18)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax


# --- activations and layer statistics -----------------------------------------------------


def _grid_figure(n: int, ncols: int, panel=(3.0, 2.4)):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             layout="constrained", squeeze=False)
    for extra in axes.flat[n:]:
        extra.set_visible(False)
    return fig, list(axes.flat[:n])


def plot_activations(
    names: Sequence[str] | None = None,
    *,
    z_range: tuple[float, float] = (-5.0, 5.0),
    derivatives: bool = True,
    ncols: int = 4,
    points: int = 401,
):
    """Small multiples of activation functions (solid) and their derivatives (dashed).

    ``names`` are keys of ``nnbolts.activations.ACTIVATIONS`` (or aliases); by default every
    elementwise one (softmax and log_softmax act on a whole vector and have no curve). Each
    panel's title gives the recommended initialisation gain. Returns the ``Figure``.

    Used in: book/activations.md. Example: ``plot_activations(["sigmoid", "tanh", "relu"])``.
    """
    from .activations import ACTIVATIONS, get_activation

    if names is None:
        chosen = [a for a in ACTIVATIONS.values() if a.elementwise]
    else:
        if isinstance(names, str):
            names = [names]
        chosen = [get_activation(n) for n in names]
    if not chosen:
        raise ValueError("no activation to plot")
    for act in chosen:
        if not act.elementwise:
            raise ValueError(f"{act.name} is not elementwise: it has no curve to plot")
    lo, hi = float(z_range[0]), float(z_range[1])
    if not hi > lo:
        raise ValueError(f"Invalid z_range: {z_range}")
    points = check_int("points", points, low=2)
    ncols = check_int("ncols", ncols, low=1)
    z = torch.linspace(lo, hi, points, dtype=torch.float64)
    fig, axes = _grid_figure(len(chosen), ncols)
    for ax, act in zip(axes, chosen):
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(_np(z), _np(act.fn(z)), lw=2, label=act.name)
        if derivatives:
            ax.plot(_np(z), _np(act.grad(z)), "--", lw=1.5, label="derivative")
        ax.set_title(f"{act.name} (gain {act.gain:.3g})", fontsize="medium")
        ax.set_xlabel("z")
        ax.legend(fontsize="x-small", loc="upper left")
    return fig


def plot_layer_stats(stats, *, which: str = "activation", ncols: int = 4, density: bool = False):
    """Histograms per layer of a :func:`nnbolts.diagnostics.layer_stats` report.

    ``which="activation"`` shows each layer's outputs, ``"gradient"`` the gradients of the
    loss with respect to them (needs a report made with ``loss_fn``). Each panel's title gives
    the layer, its mean and std and, where it applies, the dead or saturated fraction — the
    pictures of book/initialization.md where activations collapse to 0, pile up at ±1, or
    gradients shrink layer by layer. Returns the ``Figure``.
    """
    check_choice("which", which, ("activation", "gradient"))
    ncols = check_int("ncols", ncols, low=1)
    layers = list(stats)
    if not layers:
        raise ValueError("no layer statistics to plot")
    prefix = "" if which == "activation" else "grad_"
    layers = [s for s in layers if getattr(s, f"{prefix}hist_counts", None) is not None]
    if not layers:
        raise ValueError(
            "the report has no gradient histograms: call layer_stats with y and loss_fn"
        )
    fig, axes = _grid_figure(len(layers), ncols)
    for ax, layer in zip(axes, layers):
        counts = _np(getattr(layer, f"{prefix}hist_counts"))
        edges = _np(getattr(layer, f"{prefix}hist_edges"))
        if density and counts.sum() > 0:
            counts = counts / (counts.sum() * np.diff(edges))
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0",
               edgecolor="C0")
        mean = float(getattr(layer, f"{prefix}mean"))
        std = float(getattr(layer, f"{prefix}std"))
        title = f"{layer.name} {layer.kind}\nmean {mean:.2g}, std {std:.2g}"
        if which == "activation":
            if layer.saturated_fraction is not None:
                title += f", saturated {float(layer.saturated_fraction):.0%}"
            elif layer.kind.lower().startswith("relu"):
                title += f", dead {float(layer.dead_fraction):.0%}"
        ax.set_title(title, fontsize="small")
        ax.tick_params(labelsize="x-small")
    fig.supxlabel("activation" if which == "activation" else "∂loss/∂activation",
                  fontsize="small")
    return fig
