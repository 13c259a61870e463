"""Diagnostics for a network in training: per-layer statistics, dead and saturated units, the
update:data ratio and gradient norms.

Explained in: book/initialization.md (vanishing and exploding signals, dead ReLUs, saturated
tanh/sigmoid units), and used again wherever a chapter checks the health of a run.

Every statistic is computed on the device of the model and returned as a 0-d tensor there; the
only host transfers happen in the ``to_dict`` / ``to_rows`` / ``format_table`` methods, which
exist to print or plot the numbers.

Example::

    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 1))
    report = layer_stats(model, X, y, loss_fn=nn.functional.mse_loss)
    print(report)                 # a table: one row per layer
    report["1"].saturated_fraction
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_floating, check_int, check_like, check_number, check_tensor
from .models import Activation

__all__ = [
    "LayerStats",
    "LayerStatsReport",
    "GradNorms",
    "layer_stats",
    "dead_fraction",
    "saturated_fraction",
    "update_ratio",
    "update_ratios",
    "grad_norms",
    "output_range",
]


# Output ranges of the bounded activations, for the saturation statistic. A unit is saturated
# when its output sits near one end of this range, where the derivative is nearly zero.
def output_range(module: nn.Module) -> tuple[float, float] | None:
    """The interval ``(low, high)`` an activation module's outputs live in, or ``None`` if the
    module is not a bounded activation (ReLU, Linear, ...).

    >>> output_range(nn.Tanh())
    (-1.0, 1.0)
    """
    if isinstance(module, (nn.Tanh, nn.Softsign)):
        return (-1.0, 1.0)
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return (0.0, 1.0)
    if isinstance(module, nn.Hardtanh) and not isinstance(module, nn.ReLU6):
        return (float(module.min_val), float(module.max_val))
    if isinstance(module, Activation):
        return _BOUNDED.get(module.name)
    return None


_BOUNDED = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


def _is_activation(module: nn.Module) -> bool:
    # torch keeps its activation modules in one file; MultiheadAttention lives there too but
    # returns a tuple and is a layer, not a pointwise activation.
    # nnbolts.models.mlp builds its non-linearities from nnbolts' own Activation layer.
    return isinstance(module, Activation) or (
        type(module).__module__ == "torch.nn.modules.activation"
        and not isinstance(module, nn.MultiheadAttention)
    )


def _as_stat_dtype(t: torch.Tensor) -> torch.Tensor:
    # Statistics of half-precision tensors are taken in float32: float16 counts stop being
    # exact at 2048 and its sums overflow at 65504.
    if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point():
        return t.to(torch.float32)
    return t


def _batch_view(name: str, activations: torch.Tensor) -> torch.Tensor:
    check_tensor(name, activations)
    if activations.ndim == 0:
        raise ValueError(f"expected {name} with a batch dimension, got a 0-d tensor")
    if activations.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(activations.shape)})")
    return activations.reshape(activations.shape[0], -1)


def dead_fraction(activations: torch.Tensor) -> torch.Tensor:
    r"""Fraction of units that are exactly zero for **every** sample of the batch.

    ``activations`` has the batch along dim 0; every other position is one unit (a 1-D tensor
    is a batch of one-unit outputs). A ReLU unit whose pre-activation is negative on the whole
    batch gets no gradient and cannot recover: it is *dead*.

    .. math:: \text{dead} = \frac{1}{U}\sum_{u=1}^{U} \mathbb 1\big[a_{n,u} = 0\ \forall n\big]

    Returns a 0-d tensor on the input's device.

    >>> dead_fraction(torch.tensor([[0., 1.], [0., 0.]]))
    tensor(0.5000)
    """
    a = _batch_view("activations", activations)
    dead = (a == 0).all(dim=0)
    return dead.to(_as_stat_dtype(a).dtype).mean()


def saturated_fraction(
    activations: torch.Tensor, low: float = -1.0, high: float = 1.0, tol: float = 0.01
) -> torch.Tensor:
    r"""Fraction of entries within ``tol`` of either end of the output range ``[low, high]``.

    The range is mapped to :math:`[-1, 1]` and an entry counts as saturated when

    .. math:: \left|\frac{2a - (\text{low} + \text{high})}{\text{high} - \text{low}}\right|
              > 1 - \text{tol},

    so with the default ``tol=0.01`` a tanh output is saturated when :math:`|a| > 0.99`, and a
    sigmoid output (``low=0, high=1``) when :math:`a < 0.005` or :math:`a > 0.995`. There the
    derivative is below 2% of its peak and gradients through the unit vanish.

    Unlike :func:`dead_fraction` this counts entries (sample × unit), not units.

    >>> saturated_fraction(torch.tensor([[0.995, 0.2], [-1.0, 0.0]]))
    tensor(0.5000)
    """
    a = _batch_view("activations", activations)
    check_number("low", low)
    check_number("high", high)
    if not float(high) > float(low):
        raise ValueError(f"Invalid range: low={low} must be smaller than high={high}")
    check_number("saturation tolerance", tol, low=0.0, high=1.0, low_open=True, high_open=True)
    a = _as_stat_dtype(a)
    centre = (float(low) + float(high)) / 2
    half_width = (float(high) - float(low)) / 2
    scaled = (a - centre).abs() / half_width
    return (scaled > 1 - float(tol)).to(a.dtype).mean()


def update_ratio(param_before: torch.Tensor, param_after: torch.Tensor) -> torch.Tensor:
    r"""The update:data ratio :math:`\|\theta_{t+1} - \theta_t\| / \|\theta_t\|` (2-norms).

    A common rule of thumb is that about ``1e-3`` per step is healthy: much smaller and the
    layer barely learns (learning rate too low, or vanishing gradients), much larger and it
    is being rewritten every step (learning rate too high, or exploding gradients).

    A zero ``param_before`` gives ``inf`` if the step moved it and ``0`` if not (never NaN).
    Returns a 0-d tensor on the parameters' device.

    >>> before = torch.tensor([3.0, 4.0])
    >>> update_ratio(before, before + torch.tensor([0.003, 0.004]))
    tensor(0.0010)
    """
    check_floating("param_before", param_before)
    check_like("param_after", param_after, "param_before", param_before)
    if param_before.numel() == 0:
        raise ValueError("param_before is empty")
    before = param_before.detach()
    step = torch.linalg.vector_norm(param_after.detach() - before)
    scale = torch.linalg.vector_norm(before)
    zero = torch.zeros((), dtype=step.dtype, device=step.device)
    inf = torch.full((), math.inf, dtype=step.dtype, device=step.device)
    when_zero = torch.where(step > 0, inf, zero)
    return torch.where(scale > 0, step / torch.where(scale > 0, scale, 1), when_zero)


def update_ratios(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor] | nn.Module
) -> dict[str, torch.Tensor]:
    """:func:`update_ratio` for every named tensor of ``before``.

    ``before`` is a snapshot such as ``{n: p.detach().clone() for n, p in
    model.named_parameters()}`` taken before ``optimizer.step()``; ``after`` is another such
    mapping or the module itself.
    """
    if not isinstance(before, Mapping):
        raise TypeError(
            f"expected before to be a mapping name -> tensor, got {type(before).__name__}"
        )
    if isinstance(after, nn.Module):
        after = dict(after.named_parameters())
    elif not isinstance(after, Mapping):
        raise TypeError(
            f"expected after to be a mapping or an nn.Module, got {type(after).__name__}"
        )
    missing = [name for name in before if name not in after]
    if missing:
        raise KeyError(f"after has no tensor named {missing[0]!r}")
    return {name: update_ratio(before[name], after[name]) for name in before}


class GradNorms(NamedTuple):
    """Per-parameter gradient norms and their total, as returned by :func:`grad_norms`."""

    per_param: dict[str, torch.Tensor]
    total: torch.Tensor


def grad_norms(model: nn.Module, norm_type: float = 2.0) -> GradNorms:
    r"""Norm of every parameter's ``.grad`` and the total norm over all of them.

    The total is the norm of the vector of per-parameter norms, which equals the norm of all
    gradients concatenated — the number ``torch.nn.utils.clip_grad_norm_(model.parameters(),
    max_norm)`` returns (without clipping anything here). Parameters without a gradient are
    skipped; with none at all the total is ``tensor(0.)``.

    >>> norms, total = grad_norms(model)
    >>> norms["0.weight"], total
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    check_number("norm type", norm_type, low=0.0, low_open=True)
    p = float(norm_type)
    per_param = {
        name: torch.linalg.vector_norm(param.grad.detach(), p)
        for name, param in model.named_parameters()
        if param.grad is not None
    }
    if not per_param:
        return GradNorms({}, torch.zeros(()))
    first = next(iter(per_param.values()))
    # clip_grad_norm_ gathers the per-tensor norms on the first gradient's device.
    stacked = torch.stack([n.to(first.device) for n in per_param.values()])
    return GradNorms(per_param, torch.linalg.vector_norm(stacked, p))


@dataclass
class LayerStats:
    """Statistics of one layer's output (and, when a loss was given, of its gradients).

    All values are 0-d tensors on the model's device (``None`` where not applicable):

    - ``mean``, ``std``: over every entry of the output (population std, ``correction=0``).
    - ``dead_fraction``: see :func:`dead_fraction` (meaningful after ReLU-like layers).
    - ``saturated_fraction``: see :func:`saturated_fraction`; only for bounded activations.
    - ``hist_counts``/``hist_edges``: ``torch.histc`` of the output, ``bins`` counts and
      ``bins + 1`` edges.
    - ``grad_*``: statistics of ∂loss/∂output (the backward signal at this layer).
    - ``weight_std`` and ``weight_grad_*``: of the layer's ``weight`` and its gradient.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    mean: torch.Tensor
    std: torch.Tensor
    dead_fraction: torch.Tensor
    saturated_fraction: torch.Tensor | None
    hist_counts: torch.Tensor
    hist_edges: torch.Tensor
    grad_mean: torch.Tensor | None = None
    grad_std: torch.Tensor | None = None
    grad_norm: torch.Tensor | None = None
    grad_hist_counts: torch.Tensor | None = None
    grad_hist_edges: torch.Tensor | None = None
    weight_std: torch.Tensor | None = None
    weight_grad_mean: torch.Tensor | None = None
    weight_grad_std: torch.Tensor | None = None
    weight_grad_norm: torch.Tensor | None = None

    _SCALARS = (
        "mean", "std", "dead_fraction", "saturated_fraction",
        "grad_mean", "grad_std", "grad_norm",
        "weight_std", "weight_grad_mean", "weight_grad_std", "weight_grad_norm",
    )

    def to_row(self) -> dict:
        """Name, kind and the scalar statistics as Python numbers (one host transfer)."""
        present = [k for k in self._SCALARS if getattr(self, k) is not None]
        # float64 keeps every digit of a float64 run (MPS has no float64: float32 there).
        wide = torch.float32 if self.mean.device.type == "mps" else torch.float64
        values = torch.stack([getattr(self, k).to(wide) for k in present]).tolist()
        row = {"name": self.name, "kind": self.kind}
        looked_up = dict(zip(present, values))
        row.update({k: looked_up.get(k) for k in self._SCALARS})
        return row

    def to_dict(self) -> dict:
        """Everything, histograms included (as lists), as plain Python values."""
        out = self.to_row()
        out["shape"] = list(self.shape)
        for f in fields(self):
            if f.name.endswith(("_counts", "_edges")):
                value = getattr(self, f.name)
                out[f.name] = None if value is None else value.tolist()
        return out


@dataclass
class LayerStatsReport:
    """The result of :func:`layer_stats`: a sequence of :class:`LayerStats` in forward order.

    Index it by position or by layer name; ``to_rows()`` gives a list of plain dicts (for a
    table or a DataFrame) and ``str(report)`` a fixed-width table.
    """

    layers: list[LayerStats] = field(default_factory=list)
    loss: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> LayerStats:
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(f"no layer named {key!r}; layers: {[s.name for s in self.layers]}")
        return self.layers[key]

    def to_rows(self) -> list[dict]:
        return [layer.to_row() for layer in self.layers]

    def to_dict(self) -> dict:
        loss = None if self.loss is None else float(self.loss)
        return {"loss": loss, "layers": [layer.to_dict() for layer in self.layers]}

    def format_table(self, columns: tuple[str, ...] | None = None) -> str:
        rows = self.to_rows()
        if columns is None:
            columns = ("name", "kind") + tuple(
                k for k in LayerStats._SCALARS if any(r[k] is not None for r in rows)
            )
        cells = [[_cell(r.get(c)) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_table()


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _histogram(t: torch.Tensor, bins: int, hist_range: tuple[float, float] | None):
    """``torch.histc`` counts and the matching edges, both on ``t``'s device."""
    t = _as_stat_dtype(t.detach()).reshape(-1)
    # A diverged network has inf/NaN outputs: histogram the finite ones instead of failing.
    t = t[torch.isfinite(t)]
    if t.numel() == 0:
        lo, hi = hist_range if hist_range is not None else (-1.0, 1.0)
        return (torch.zeros(bins, dtype=t.dtype, device=t.device),
                torch.linspace(float(lo), float(hi), bins + 1, dtype=t.dtype, device=t.device))
    if hist_range is not None:
        lo, hi = float(hist_range[0]), float(hist_range[1])
        counts = torch.histc(t, bins=bins, min=lo, max=hi)
        edges = torch.linspace(lo, hi, bins + 1, dtype=t.dtype, device=t.device)
        return counts, edges
    # min = max = 0 makes histc use the data's range, widened by 1 on each side when the data
    # is constant; the edges below reproduce that without a host round trip.
    counts = torch.histc(t, bins=bins, min=0, max=0)
    lo, hi = t.min(), t.max()
    flat = hi == lo
    lo, hi = torch.where(flat, lo - 1, lo), torch.where(flat, hi + 1, hi)
    steps = torch.linspace(0, 1, bins + 1, dtype=t.dtype, device=t.device)
    return counts, lo + (hi - lo) * steps


def _moments(t: torch.Tensor):
    t = _as_stat_dtype(t.detach())
    return t.mean(), t.std(correction=0), torch.linalg.vector_norm(t)


def layer_stats(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    bins: int = 50,
    hist_range: tuple[float, float] | None = None,
    saturation_tol: float = 0.01,
    layer_types: tuple[type, ...] | None = None,
) -> LayerStatsReport:
    r"""Run ``model`` on the batch ``X`` and record statistics of every layer's output.

    The recorded layers are the ``nn.Linear`` modules and the activation modules
    (``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ...) anywhere in ``model`` — or the module
    types in ``layer_types`` — in the order the forward pass calls them (a module called twice
    appears twice, the second time as ``"name[1]"``). Forward hooks collect the outputs; they
    are removed before returning, even if the forward pass raises.

    If ``loss_fn`` and ``y`` are given, ``loss_fn(model(X), y)`` is differentiated with
    ``torch.autograd.grad`` with respect to every recorded output and every recorded
    layer's ``weight``, filling the ``grad_*`` and ``weight_grad_*`` fields. The parameters'
    ``.grad`` are **not** touched, so this can be called in the middle of training.

    In a deep stack with a poor initialisation the book watches ``std`` shrink layer by layer
    (vanishing), grow (exploding), ``dead_fraction`` rise after ReLUs or
    ``saturated_fraction`` rise after tanh/sigmoid — the same for the ``grad_std`` going
    backwards.

    Arguments:
        bins: number of histogram bins; ``hist_range``: fixed ``(min, max)`` for every
            activation histogram (values outside are not counted), default each layer's own
            range. Gradient histograms always use their own range.
        saturation_tol: ``tol`` of :func:`saturated_fraction`.

    Example::

        report = layer_stats(model, X, y, nn.functional.cross_entropy)
        print(report)
        [row["std"] for row in report.to_rows()]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    check_tensor("X", X)
    if X.ndim == 0 or X.numel() == 0:
        raise ValueError(f"X is empty: expected a batch of inputs, got shape {tuple(X.shape)}")
    if (y is None) != (loss_fn is None):
        raise ValueError("pass both y and loss_fn to record gradients, or neither")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"expected loss_fn to be callable, got {type(loss_fn).__name__}")
    if y is not None:
        check_tensor("y", y)
    bins = check_int("bins", bins, low=1)
    check_number("saturation tolerance", saturation_tol, low=0.0, high=1.0, low_open=True,
                 high_open=True)
    if hist_range is not None and not float(hist_range[1]) > float(hist_range[0]):
        raise ValueError(f"Invalid hist_range: {hist_range}")
    if layer_types is not None and not (
        isinstance(layer_types, tuple) and all(isinstance(t, type) for t in layer_types)
    ):
        raise TypeError(f"expected layer_types to be a tuple of classes, got {layer_types!r}")

    def selected(module: nn.Module) -> bool:
        if layer_types is not None:
            return isinstance(module, layer_types)
        return isinstance(module, nn.Linear) or _is_activation(module)

    with_grads = loss_fn is not None
    records: list[LayerStats] = []
    outputs: list[torch.Tensor] = []
    owners: list[nn.Module] = []
    calls: dict[str, int] = {}

    def make_hook(name: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                return None
            count = calls.get(name, 0)
            calls[name] = count + 1
            label = name if count == 0 else f"{name}[{count}]"
            a = _batch_view(f"output of layer {label}", output).detach()
            mean, std, _ = _moments(a)
            counts, edges = _histogram(a, bins, hist_range)
            bounds = output_range(module)
            saturated = None if bounds is None else saturated_fraction(a, *bounds, saturation_tol)
            weight = getattr(module, "weight", None)
            weight_std = None
            if isinstance(weight, torch.Tensor) and count == 0:
                weight_std = _as_stat_dtype(weight.detach()).std(correction=0)
            records.append(LayerStats(
                name=label, kind=type(module).__name__, shape=tuple(output.shape),
                mean=mean, std=std, dead_fraction=dead_fraction(a),
                saturated_fraction=saturated, hist_counts=counts, hist_edges=edges,
                weight_std=weight_std,
            ))
            outputs.append(output)
            owners.append(module if count == 0 else None)
            # A later in-place op (ReLU(inplace=True)) would overwrite this tensor and its
            # grad_fn; handing the rest of the network a copy keeps ∂loss/∂output reachable.
            return output.clone() if with_grads and output.requires_grad else None

        return hook

    handles = []
    try:
        for name, module in model.named_modules():
            if selected(module):
                handles.append(module.register_forward_hook(make_hook(name or "model")))
        with torch.set_grad_enabled(with_grads):
            prediction = model(X)
            loss = loss_fn(prediction, y) if with_grads else None
    finally:
        for handle in handles:
            handle.remove()

    if not records:
        raise ValueError(
            f"no layer of {type(model).__name__} was recorded: it has no nn.Linear or "
            "activation module (pass layer_types=(...) to choose the layers)"
        )
    if not with_grads:
        return LayerStatsReport(records, None)

    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor")
    _fill_gradients(loss.reshape(()), records, outputs, owners, bins)
    return LayerStatsReport(records, loss.detach().reshape(()))


def _fill_gradients(loss, records, outputs, owners, bins) -> None:
    targets: list[torch.Tensor] = []
    slots: list[tuple[int, str]] = []
    for i, (out, owner) in enumerate(zip(outputs, owners)):
        if out.requires_grad:
            targets.append(out)
            slots.append((i, "output"))
        weight = getattr(owner, "weight", None) if owner is not None else None
        if isinstance(weight, torch.Tensor) and weight.requires_grad:
            targets.append(weight)
            slots.append((i, "weight"))
    if not targets or not loss.requires_grad:
        return
    grads = torch.autograd.grad(loss, targets, allow_unused=True)
    for (i, what), g in zip(slots, grads):
        if g is None:
            continue
        record = records[i]
        mean, std, norm = _moments(g)
        if what == "output":
            record.grad_mean, record.grad_std, record.grad_norm = mean, std, norm
            record.grad_hist_counts, record.grad_hist_edges = _histogram(g, bins, None)
        else:
            record.weight_grad_mean, record.weight_grad_std, record.weight_grad_norm = (
                mean, std, norm
            )
