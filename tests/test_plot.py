"""nnbolts.plot: every figure renders to a PNG with the Agg backend, and animations become a
self-contained JavaScript player."""

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from torch import nn  # noqa: E402

from nnbolts.diagnostics import layer_stats  # noqa: E402
from nnbolts.landscapes import LANDSCAPES, descend  # noqa: E402
from nnbolts.plot import (  # noqa: E402
    animate_trajectories,
    animation_html,
    plot_activations,
    plot_decision_boundary,
    plot_histories,
    plot_landscape,
    plot_layer_stats,
    to_html,
)


@dataclass
class FakeHistory:
    """Stand-in with the interface of nnbolts.train.History."""

    step_loss: list = field(default_factory=lambda: [1.0 / (1 + 0.1 * i) for i in range(40)])
    step_lr: list = field(default_factory=lambda: [0.1] * 40)
    epochs: dict = field(default_factory=lambda: {
        "train_loss": [1.0, 0.6, 0.4, 0.3, 0.25],
        "val_loss": [1.1, 0.7, 0.5, 0.55, 0.6],
        "train_accuracy": [0.5, 0.7, 0.8, 0.85, 0.9],
    })
    best_epoch: int | None = 3
    stopped_epoch: int | None = 5


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    plt.close("all")


def saved(figure_or_axes, tmp_path, name="figure.png"):
    fig = getattr(figure_or_axes, "figure", figure_or_axes)
    path = tmp_path / name
    fig.savefig(path, dpi=50)
    assert path.exists() and path.stat().st_size > 2000
    return path


@pytest.fixture(scope="module")
def runs():
    return {
        "SGD": descend("rosenbrock", torch.optim.SGD, steps=30, lr=1e-3, momentum=0.9),
        "Adam": descend("rosenbrock", torch.optim.Adam, steps=20, lr=0.05),
    }


def test_plot_histories_per_epoch_marks_the_best_epoch(tmp_path):
    ax = plot_histories({"a": FakeHistory(), "b": FakeHistory(best_epoch=2)})
    saved(ax, tmp_path)
    labels = [line.get_label() for line in ax.lines]
    assert "a: val_loss" in labels and "b: train_loss" in labels
    best_lines = [ln for ln in ax.lines if ln.get_label() == "a: best epoch 3"]
    assert len(best_lines) == 1 and list(best_lines[0].get_xdata()) == [3, 3]
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert {float(s.get_xdata()[0]) for s in stars} == {2.0, 3.0}
    val = next(ln for ln in ax.lines if ln.get_label() == "a: val_loss")
    assert list(val.get_xdata()) == [1, 2, 3, 4, 5]  # epochs counted from 1, like History


def test_plot_histories_per_step_and_other_inputs(tmp_path):
    ax = plot_histories(FakeHistory(), per="step", smooth=5, logy=True)
    (curve,) = ax.lines
    assert len(curve.get_xdata()) == 36 and curve.get_xdata()[-1] == 39
    assert ax.get_yscale() == "log"
    ax = plot_histories([FakeHistory(), FakeHistory(best_epoch=None)], keys=("train_accuracy",))
    saved(ax, tmp_path)
    assert any(line.get_label() == "run 1: train_accuracy" for line in ax.lines)


def test_plot_histories_with_the_real_history(tmp_path):
    from nnbolts.train import History

    history = History(step_loss=[1.0, 0.5, 0.4], step_lr=[0.1] * 3,
                      epochs={"train_loss": [0.8, 0.5], "val_loss": [0.9, 0.7]}, best_epoch=2)
    saved(plot_histories({"run": history}), tmp_path)


def test_plot_histories_errors():
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_histories(FakeHistory(), keys=("val_accuracy",))
    with pytest.raises(TypeError, match="History"):
        plot_histories({"a": 3})
    with pytest.raises(ValueError, match="Invalid per"):
        plot_histories(FakeHistory(), per="batch")


def test_plot_every_landscape_on_given_axes(tmp_path):
    fig, axes = plt.subplots(2, 4, figsize=(12, 6))
    for ax, (name, scape) in zip(axes.flat, sorted(LANDSCAPES.items())):
        assert plot_landscape(name, ax=ax, resolution=40, levels=12) is ax
        assert ax.get_xlim() == scape.bounds[0]
        assert ax.get_title() == scape.description
    saved(fig, tmp_path)


def test_plot_landscape_with_trajectories(runs, tmp_path):
    ax = plot_landscape("rosenbrock", trajectories=runs, resolution=40, colorbar=True)
    saved(ax, tmp_path)
    sgd = next(line for line in ax.lines if line.get_label() == "SGD")
    assert len(sgd.get_xdata()) == 31
    ax = plot_landscape("saddle", log=False, levels=[-2, -1, 0, 1, 2], resolution=30,
                        trajectories=descend("saddle", torch.optim.SGD, steps=10, lr=0.1))
    saved(ax, tmp_path, "saddle.png")


def test_plot_quartic_with_the_courses_runs(tmp_path):
    runs = {
        "x0 = 5": descend("quartic", torch.optim.SGD, [5.0], 50, lr=0.1),
        "momentum 0.9": descend("quartic", torch.optim.SGD, [-5.0], 50, lr=0.1, momentum=0.9),
    }
    ax = plot_landscape("quartic", trajectories=runs)
    saved(ax, tmp_path)
    line = next(ln for ln in ax.lines if ln.get_label() == "x0 = 5")
    assert list(line.get_ydata()) == pytest.approx(runs["x0 = 5"].losses.tolist())


def test_diverged_run_does_not_move_the_view(tmp_path):
    run = descend("quartic", torch.optim.SGD, [5.0], 50, lr=3.0)
    assert run.diverged
    ax = plot_landscape("quartic", trajectories={"lr 3": run})
    saved(ax, tmp_path)
    assert ax.get_xlim() == (-6.0, 6.0)


def test_plot_landscape_errors(runs):
    with pytest.raises(TypeError, match="Trajectory"):
        plot_landscape("beale", trajectories={"a": [1, 2]})
    with pytest.raises(TypeError, match="levels"):
        plot_landscape("beale", levels="many")
    with pytest.raises(ValueError, match="Invalid landscape"):
        plot_landscape("volcano")


def test_animation_to_html_is_a_javascript_player(runs, tmp_path):
    anim = animate_trajectories("rosenbrock", runs, frames=3, interval=50, figsize=(3, 2.5),
                                dpi=40)
    assert isinstance(anim, FuncAnimation)
    sgd = next(line for line in anim._fig.axes[0].lines if line.get_label() == "SGD")
    anim._func(2)  # the last frame shows every run in full
    assert len(sgd.get_xdata()) == 31
    anim._func(1)  # halfway through the longest run (30 steps): steps 0..15
    assert len(sgd.get_xdata()) == 16
    html = to_html(anim)
    assert "<script" in html
    assert "new Array(3)" in html and html.count("data:image/png;base64") == 3
    assert plt.get_fignums() == []  # no stray still frame in the notebook
    (tmp_path / "anim.html").write_text(html)
    assert (tmp_path / "anim.html").stat().st_size > 2000


def test_animation_html_for_a_book_page(runs):
    from IPython.display import HTML

    page = animation_html("quartic", {"SGD": descend("quartic", torch.optim.SGD, [5.0], 3,
                                                     lr=0.1)}, figsize=(3, 2), dpi=40)
    assert isinstance(page, HTML) and "<script" in page.data
    assert "new Array(4)" in page.data  # one frame per point: 3 steps + the start
    assert plt.get_fignums() == []
    anim = animate_trajectories("beale", runs["Adam"], frames=2, figsize=(3, 2), dpi=40)
    assert "<script" in animation_html(anim, default_mode="loop").data
    with pytest.raises(ValueError, match="no Trajectory"):
        animate_trajectories("beale", {})
    with pytest.raises(TypeError, match="Animation"):
        to_html("not an animation")


@pytest.mark.parametrize("outputs", [1, 3])
def test_plot_decision_boundary(outputs, device, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, outputs))
    model.to(device).train()
    X = torch.randn(40, 2, device=device)
    y = torch.randint(0, max(outputs, 2), (40,), device=device)
    ax = plot_decision_boundary(model, X, y, resolution=30)
    saved(ax, tmp_path)
    assert model.training and all(m.training for m in model.modules())  # mode restored
    assert all(p.grad is None for p in model.parameters())


def test_plot_decision_boundary_of_a_flat_output(tmp_path):
    class Logit(nn.Module):
        def forward(self, x):
            return x[:, 0] - x[:, 1]  # shape (N,): binary logits

    X = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.5]])
    saved(plot_decision_boundary(Logit(), X, torch.tensor([0, 1, 0]), resolution=20), tmp_path)


def test_plot_decision_boundary_errors():
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        plot_decision_boundary(model, torch.randn(5, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="labels"):
        plot_decision_boundary(model, torch.randn(5, 2), torch.zeros(4))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        plot_decision_boundary(lambda x: x, torch.randn(5, 2), torch.zeros(5))


def test_plot_activations(tmp_path):
    fig = plot_activations()
    saved(fig, tmp_path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert any(t.startswith("relu") for t in titles) and not any("softmax" in t for t in titles)
    fig = plot_activations(["tanh", "swish"], derivatives=False, ncols=2)
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]  # two axis lines and the curve
    with pytest.raises(ValueError, match="not elementwise"):
        plot_activations(["softmax"])
    with pytest.raises(ValueError, match="Unknown activation"):
        plot_activations(["sparkle"])


def test_plot_layer_stats(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 1), nn.Tanh())
    X, y = torch.randn(64, 10), torch.randn(64, 1)
    report = layer_stats(net, X, y, nn.functional.mse_loss, bins=20)
    fig = plot_layer_stats(report)
    saved(fig, tmp_path)
    assert sum(ax.get_visible() for ax in fig.axes) == 4
    assert "dead" in fig.axes[1].get_title() and "saturated" in fig.axes[3].get_title()
    grads = plot_layer_stats(report, which="gradient", density=True, ncols=2)
    heights = [sum(p.get_height() * p.get_width() for p in ax.patches) for ax in grads.axes]
    assert heights == pytest.approx([1.0] * 4)  # density=True: each histogram has area 1
    with pytest.raises(ValueError, match="gradient histograms"):
        plot_layer_stats(layer_stats(net, X), which="gradient")
    with pytest.raises(ValueError, match="no layer statistics"):
        plot_layer_stats([])
