"""The bundled demo submissions (``instructor/demo_submissions/``) and how they are made.

``make grade`` with no ``SUBMISSIONS=`` grades these; ``tests/test_pipeline.py`` checks what the
pipeline makes of each. They are built from the released notebooks and the instructor's
solutions, so ``python -m instructor.demo`` (``make demo-submissions``) refreshes them after an
assignment changes; a test fails while they are out of date.

======================  =====  ==========================================================
student                 which  what the submission does
======================  =====  ==========================================================
correct                 all    every answer right
partial                 all    some answers right, some with a classic mistake: 03 adds the
                               weight decay after the momentum (only the hidden test sees
                               it, and names it), 04 Adam without bias correction, 05 a
                               cosine that climbs back up, 06 drop_last ignored, 07 the
                               cross-entropy gradient without its 1/N, ...
blank                   all    the release, untouched
honest_adam             04     Adam written like torch's loop (lerp, addcdiv); adamw_init a
                               one-line call to its own adam_init: full marks, no flag
honest_schedules        05     schedules as callable objects, a lambda, a functools.partial:
                               full marks, no flag
honest_training         06     batches from Tensor.split, a while loop, deepcopy of the
                               best weights: full marks, no flag
honest_warnings         all    every answer right, and every function it writes warns and
                               prints to stderr when called: full marks, no flag
torch_optim             04     adam_step runs torch.optim.Adam: no credit for those tests
                               (the torch-use policy, instructor/policy.py)
cheat_allclose          01     wrong sigmoid, with torch.allclose / assert_close patched in
                               its kernel: inert (the verdict is outside), scores its work
cheat_reference         01     sigmoid calls nnbolts, sigmoid_grad wraps it: the kernel has no
                               nnbolts, the cell fails; flagged by the policy
cheat_partial_credit    01     a wrong relu that displays "1" first (nbgrader's partial credit):
                               inert, test cells hold only the trusted side's output
cheat_deleted           01     deletes the softmax test cell
cheat_stripped          01     removes the nbgrader metadata of the sigmoid_grad test
cheat_swallow           01     installs an IPython handler that hides AssertionError: inert
loop                    01     an infinite loop that ignores KeyboardInterrupt
crash                   01     kills its own kernel with os._exit halfway through
cheat_edited            02     replaces the xavier_uniform_ test with ``pass``
corrupt                 02     a truncated, unreadable notebook file
memory_hog              02     lecun_uniform_ allocates 64 GB first
snoop                   02     reads the instructor's files and the gradebook, signals the
                               grader; answers nothing itself
cheat_optim_reference   04     adam_step calls nnbolts.optim.adam_step, imported under a
                               computed name: no nnbolts in the kernel; flagged (names built
                               at run time)
======================  =====  ==========================================================
"""

from __future__ import annotations

import ast
import copy
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

from instructor import course

DEMO = course.REPO / "instructor" / "demo_submissions"
_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _solution_code(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in _MARKERS)


def _by_id(nb) -> dict:
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def _answered(release, source):
    """The release with every solution cell filled in from the instructor's source."""
    nb = copy.deepcopy(release)
    answers = _by_id(source)
    for gid, cell in _by_id(nb).items():
        if cell.metadata["nbgrader"].get("solution"):
            cell.source = _solution_code(answers[gid].source)
    return nb


def _replace(nb, grade_id: str, old: str, new: str) -> None:
    cell = _by_id(nb)[grade_id]
    if old not in cell.source:
        raise ValueError(f"demo: {old!r} is not in cell {grade_id!r}; update instructor/demo.py")
    cell.source = cell.source.replace(old, new)


def _insert_after(nb, grade_id: str, code: str) -> None:
    index = nb.cells.index(_by_id(nb)[grade_id])
    cell = nbformat.v4.new_code_cell(code)
    cell["id"] = f"added-after-{grade_id}"  # new_code_cell draws a random id
    nb.cells.insert(index + 1, cell)


def _delete(nb, grade_id: str) -> None:
    nb.cells.remove(_by_id(nb)[grade_id])


# --------------------------------------------------------------------------------------------
# the students: each takes (release, source, correct) and returns a notebook, or bytes
# --------------------------------------------------------------------------------------------


def _partial_01(release, source, nb):
    _replace(nb, "sigmoid_grad", "return e / (1 + e) ** 2", "return 1 / (1 + e)")
    _replace(nb, "relu", "return (z > 0).to(z.dtype)", "return (z >= 0).to(z.dtype)")
    _replace(nb, "softmax", "e = torch.exp(z - torch.amax(z, dim=dim, keepdim=True))",
             "e = torch.exp(z)")
    _replace(nb, "q_saturated", 'return "A"', 'return "C"')
    return nb


def _partial_02(release, source, nb):
    _replace(nb, "fan_in_and_fan_out", "kernel = math.prod(tensor.shape[2:])", "kernel = 1")
    _replace(nb, "q_zero_init", 'return "B"', 'return "A"')  # random outgoing weights
    # the factor is not capped at 1: a gradient below max_norm is scaled up to it
    _replace(nb, "clip_grad_norm_", "factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)",
             "factor = max_norm / (total + 1e-6)")
    return nb


def _partial_03(release, source, nb):
    # weight decay added after the momentum: the visible test (decay without momentum) passes,
    # the hidden one names the mistake
    _replace(nb, "sgd", "    if weight_decay != 0:\n        g = g + weight_decay * param\n", "")
    _replace(nb, "sgd", "    return param - lr * g, new_state",
             "    if weight_decay != 0:\n        g = g + weight_decay * param\n"
             "    return param - lr * g, new_state")
    _replace(nb, "sgd_velocity", "new_param = param + momentum * v - lr * grad",
             "new_param = param + v")  # nesterov=True ignored
    _replace(nb, "q_momentum", 'return "C"', 'return "B"')
    _replace(nb, "q_stable_lr", "return 2 / torch", "return 1 / torch")  # 1/h_max
    return nb


def _partial_04(release, source, nb):
    # Adam without its bias correction (AdamW, which calls adam_step, inherits the mistake)
    _replace(nb, "adam", "m_hat = m / (1 - beta1 ** t)\n    v_hat = v / (1 - beta2 ** t)",
             "m_hat, v_hat = m, v")
    _replace(nb, "q_eps", 'return "B"', 'return "C"')
    # NAdam's look-ahead with this step's momentum coefficient instead of the next one's
    _replace(nb, "nadam", "mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))",
             "mu_next = mu")
    return nb


def _partial_05(release, source, nb):
    _replace(nb, "cosine", "t = min(step, total_steps)", "t = step")  # climbs back up
    _replace(nb, "warmup", "return schedule(step - warmup_steps)", "return schedule(step)")
    _replace(nb, "q_too_large", 'return "C"', 'return "A"')
    _replace(nb, "one_cycle", "peak = pct_start * total_steps - 1",
             "peak = pct_start * total_steps")  # the climb ends one step late
    _replace(nb, "range_test", "smoothed.append(average / (1 - beta ** (t + 1)))",
             "smoothed.append(average)")  # no bias correction
    return nb


def _partial_06(release, source, nb):
    _replace(nb, "minibatches", "end = n - n % size if drop_last else n", "end = n")
    _replace(nb, "q_updates_per_epoch", "return (16, 15)", "return (15, 16)")
    _replace(nb, "q_curve_fix", 'return "D"', 'return "C"')  # the lowest training loss
    return nb


def _partial_07(release, source, nb):
    # the cross-entropy gradient without the 1/N of the mean (the visible check with N = 2 and
    # autograd see it), the KL divergence the other way round, the probability for the loss
    _replace(nb, "cross_entropy_grad", "return (probs - one_hot) / n", "return probs - one_hot")
    _replace(nb, "kl_div", "(torch.exp(log_q) * (log_q - log_p))",
             "(torch.exp(log_p) * (log_p - log_q))")
    _replace(nb, "q_initial_loss", "return math.log(10)", "return 0.1")
    return nb


def _partial_08(release, source, nb):
    # tanh' evaluated at the pre-activation (1 - Z1^2: the hidden test names it), the relative
    # error divided by the analytic gradient's norm only, the parameter count for the evaluations
    _replace(nb, "mlp_backward", "* (1 - A1 * A1)", '* (1 - cache["Z1"] ** 2)')
    _replace(nb, "gradient_check", "scale = max(estimate.norm().item(), analytic.norm().item())",
             "scale = analytic.norm().item()")
    _replace(nb, "q_evaluations", "return 2 * parameters", "return parameters")
    return nb


def _partial_09(release, source, nb):
    # the plain average of the shards' gradients (wrong for unequal shards: the visible check
    # with 10 rows on 3 workers sees it), the ring's traffic in numbers instead of bytes
    _replace(nb, "sharded_gradient", "t += g * (X_r.shape[0] / n)", "t += g / world_size")
    _replace(nb, "q_ring_bytes", "return 2 * (k - 1) / k * P * 4", "return 2 * (k - 1) / k * P")
    return nb


# Honest but unusual answers, written differently from the instructor's and from nnbolts: they
# must get full marks and no flag.
_HONEST_ADAM = '''\
def adam_init(param, *, amsgrad=False):
    """Zero moments; AMSGrad keeps the running maximum of v too."""
    keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
    return {"step": 0, **{key: param.new_zeros(param.shape) for key in keys}}


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False):
    """As torch's single-tensor loop computes it: the corrections fold into the step size."""
    (beta1, beta2), step = betas, state["step"] + 1
    d_p = grad.neg() if maximize else grad
    d_p = d_p.add(param, alpha=weight_decay) if weight_decay else d_p
    exp_avg = torch.lerp(state["exp_avg"], d_p, 1 - beta1)
    exp_avg_sq = state["exp_avg_sq"].mul(beta2).addcmul(d_p, d_p, value=1 - beta2)
    out = dict(state, step=step, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    second = exp_avg_sq
    if amsgrad:
        second = out["max_exp_avg_sq"] = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq)
    step_size = lr / (1 - beta1 ** step)
    denom = (second.sqrt() / math.sqrt(1 - beta2 ** step)).add(eps)
    return param.addcdiv(exp_avg, denom, value=-step_size), out
'''

# adamw_init is a one-line call to the student's own adam_init (as nnbolts' is to its own)
_HONEST_ADAMW = '''\
def adamw_init(param, *, amsgrad=False):
    return adam_init(param, amsgrad=amsgrad)


def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False, maximize=False):
    decayed = param.mul(1 - lr * weight_decay)
    return adam_step(decayed, grad, state, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad,
                     maximize=maximize)
'''


def _honest_04(release, source, nb):
    _by_id(nb)["adam"].source = _HONEST_ADAM
    _by_id(nb)["adamw"].source = _HONEST_ADAMW
    return nb


# Schedules as callable objects, a lambda and a functools.partial: each still a pure function
# of the step, which is all the assignment asks of a schedule.
_HONEST_SCHEDULES = {
    "step_decay": '''\
class StepDecay:
    """A schedule object: the same pure function of step as a closure, with a readable repr."""

    def __init__(self, lr, step_size, gamma):
        self.lr, self.step_size, self.gamma = lr, step_size, gamma

    def __call__(self, step):
        return self.lr * self.gamma ** (step // self.step_size)

    def __repr__(self):
        return f"StepDecay({self.lr}, {self.step_size}, {self.gamma})"


def step_decay(lr, step_size, gamma=0.1):
    return StepDecay(lr, step_size, gamma)
''',
    "exponential_inverse_time": '''\
import functools


def _inverse_time(step, *, lr, decay_rate, decay_steps):
    return lr / (1 + decay_rate * step / decay_steps)


def exponential(lr, gamma):
    return lambda step: lr * gamma ** step


def inverse_time(lr, decay_rate, decay_steps=1):
    return functools.partial(_inverse_time, lr=lr, decay_rate=decay_rate,
                             decay_steps=decay_steps)
''',
    "warmup": '''\
class Warmup:
    def __init__(self, inner, warmup_steps, start_factor):
        self.inner, self.warmup_steps, self.start_factor = inner, warmup_steps, start_factor

    def __call__(self, step):
        if step < self.warmup_steps:
            ramp = self.start_factor + (1 - self.start_factor) * step / self.warmup_steps
            return self.inner(0) * ramp
        return self.inner(step - self.warmup_steps)


def warmup(schedule, warmup_steps, start_factor=0.0):
    return Warmup(schedule, warmup_steps, start_factor)
''',
}


def _honest_05(release, source, nb):
    for grade_id, code in _HONEST_SCHEDULES.items():
        _by_id(nb)[grade_id].source = code
    return nb


# Batches cut with Tensor.split, a while loop with copy.deepcopy of the best weights: the same
# random draws and the same arithmetic as the instructor's, organised differently.
_HONEST_TRAINING = {
    "minibatches": '''\
def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
    n = len(X)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(X.device)
    for index in order.split(batch_size or n):
        if drop_last and len(index) < (batch_size or n):
            return
        yield X[index], y[index]
''',
    "train_with_early_stopping": '''\
import ast
import copy


def _epoch_loss(model, loss_fn, optimizer, batches):
    """One pass over the batches; the mean loss weighted by batch size."""
    weighted = []
    for xb, yb in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        weighted.append((loss.item(), len(xb)))
    return sum(l * k for l, k in weighted) / sum(k for _, k in weighted)


def train_with_early_stopping(model, loss_fn, optimizer, train, val, *, epochs, batch_size,
                              patience, generator):
    history = {"train_loss": [], "val_loss": []}
    best = (math.inf, None, None)  # (loss, epoch, weights)
    epoch, stopped = 0, None
    while epoch < epochs and stopped is None:
        epoch += 1
        model.train()
        history["train_loss"].append(_epoch_loss(
            model, loss_fn, optimizer, minibatches(*train, batch_size, generator=generator)))
        model.eval()
        with torch.no_grad():
            history["val_loss"].append(loss_fn(model(val[0]), val[1]).item())
        if history["val_loss"][-1] < best[0]:
            best = (history["val_loss"][-1], epoch, copy.deepcopy(model.state_dict()))
        elif epoch - (best[1] or 0) >= patience:  # epochs without improvement
            stopped = epoch
    if best[2] is not None:
        model.load_state_dict(best[2])
    return best[1], stopped, history
''',
}


def _honest_06(release, source, nb):
    for grade_id, code in _HONEST_TRAINING.items():
        _by_id(nb)[grade_id].source = code
    return nb


# adam_step hands the work to torch.optim.Adam on a throw-away copy of the parameter. The grader
# refuses it (torch's own implementation scores 0) but does not call it cheating.
_TORCH_ADAM = '''\
def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False):
    p = param.detach().clone().requires_grad_(True)
    p.grad = grad.detach().clone()
    opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                           amsgrad=amsgrad, maximize=maximize)
    if state["step"]:
        opt.state[p] = {k: torch.tensor(float(v)) if k == "step" else v.clone()
                        for k, v in state.items()}
    opt.step()
    new = {k: int(v) if k == "step" else v.detach().clone() for k, v in opt.state[p].items()}
    return p.detach(), new
'''

# adam_step calls the course library, imported under a computed name so that no "nnbolts" is
# in sight of the static audit: the runtime watch must catch it.
_NNBOLTS_ADAM = '''\
import importlib

_optim = importlib.import_module("nnb" + "olts.optim")


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False):
    return _optim.adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                            weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
'''


def _own_adam_step(code):
    """A 04 student whose adam_step is ``code``, with the instructor's adam_init above it."""
    def make(release, source, nb):
        cell = _by_id(nb)["adam"]
        init = cell.source.split("\n\n\ndef adam_step")[0]
        cell.source = f"{init}\n\n\n{code}"
        return nb
    return make


def _cheat_allclose(release, source, nb):
    _replace(nb, "sigmoid", "e = torch.exp(-torch.abs(z))\n", "")
    _replace(nb, "sigmoid", "return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))",
             "return z")
    _insert_after(nb, "setup", "torch.allclose = lambda *args, **kwargs: True\n"
                               "torch.testing.assert_close = lambda *args, **kwargs: None")
    return nb


def _cheat_reference(release, source, nb):
    cell = _by_id(nb)["sigmoid"]
    cell.source = ('def sigmoid(z):\n    import nnbolts.activations\n'
                   '    return nnbolts.activations.sigmoid(z)\n')
    _by_id(nb)["sigmoid_grad"].source = (
        "import importlib\n\n_lib = importlib.import_module('nnb' + 'olts.activations')\n\n"
        "def sigmoid_grad(z):\n    return _lib.sigmoid_grad(z * 1)\n")
    return nb


def _cheat_partial_credit(release, source, nb):
    _replace(nb, "relu", "return torch.where(z > 0, z, torch.zeros_like(z))",
             "get_ipython().displayhook(1)  # nbgrader reads a shown number as points\n"
             "    return z")
    return nb


def _cheat_deleted(release, source, nb):
    _delete(nb, "test_softmax")
    return nb


def _cheat_stripped(release, source, nb):
    cell = _by_id(nb)["test_sigmoid_grad"]
    cell.metadata = nbformat.NotebookNode()
    return nb


def _cheat_swallow(release, source, nb):
    _replace(nb, "tanh_grad", "return 4 * e / (1 + e) ** 2", "return e")
    _insert_after(nb, "setup", "get_ipython().set_custom_exc((AssertionError,), "
                               "lambda shell, etype, value, tb, tb_offset=None: None)")
    return nb


def _loop(release, source, nb):
    _insert_after(nb, "silu", "import time\n\nwhile True:  # ignores the interrupt, forever\n"
                              "    try:\n        time.sleep(0.1)\n"
                              "    except KeyboardInterrupt:\n        pass")
    return nb


def _crash(release, source, nb):
    _insert_after(nb, "leaky_relu_elu", "import os\n\nos._exit(3)")
    return nb


def _cheat_edited(release, source, nb):
    _by_id(nb)["test_xavier_uniform_"].source = "pass  # the test always passes now"
    _replace(nb, "xavier_uniform_", "bound = math.sqrt(3.0) * gain", "bound = gain")
    return nb


def _corrupt(release, source, nb):
    text = nbformat.writes(nb)
    return text[: len(text) // 2].encode()


def _memory_hog(release, source, nb):
    _replace(nb, "kaiming_lecun", "    fan_in, _ = fan_in_and_fan_out(tensor)\n",
             "    scratch = torch.ones(2**34)  # 64 GB\n"
             "    fan_in, _ = fan_in_and_fan_out(tensor)\n")
    return nb


_SNOOP = '''\
import os
import pathlib

# The kernel runs in <course>/.pipeline/scratch/<random>/: try the instructor's files around it,
# the other students' work and the gradebook, then the grader process itself.
for guess in ["../../../source", "../../../submitted", "../../../gradebook.db", "/root", "/home"]:
    path = pathlib.Path(guess)
    try:
        found = sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()[:16]
        print("read", guess, found)
    except OSError as exc:
        print("denied:", guess, exc)
try:
    with open("../../../gradebook.db", "ab") as db:
        db.write(b"all grades are 100")
except OSError as exc:
    print("denied: writing the gradebook:", exc)
try:
    os.kill(os.getppid(), 9)
except OSError as exc:
    print("denied: killing the grader:", exc)'''


def _snoop(release, source, nb):
    nb = copy.deepcopy(release)
    _insert_after(nb, "setup", _SNOOP)
    return nb


NOTEBOOK = {"01-activations": "activations", "02-initializers": "initializers",
            "03-gradient-descent": "gradient_descent",
            "04-adaptive-optimizers": "adaptive_optimizers", "05-schedules": "schedules",
            "06-minibatch": "minibatch", "07-losses": "losses",
            "08-backprop": "backprop", "09-scaling": "scaling"}


def _unchanged(release, source, nb):
    return nb


_NOISY = '''\
import functools as _functools, sys as _sys, warnings as _warnings


def _noisy(function):
    @_functools.wraps(function)
    def noisy(*args, **kwargs):
        _warnings.warn("a harmless warning from the student's code", UserWarning)
        print("a harmless line on stderr", file=_sys.stderr)
        return function(*args, **kwargs)
    return noisy
'''


def _warnings(release, source, nb):
    """The right answers, each function wrapped so that every call warns and writes to
    stderr (what torch's deprecation warnings do): a warning never costs a point."""
    first = True
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        names = [node.name for node in ast.parse(cell.source).body
                 if isinstance(node, ast.FunctionDef)]
        if names:
            cell.source += ("\n\n" + _NOISY if first else "") + "".join(
                f"\n{name} = _noisy({name})" for name in names)
            first = False
    return nb


def _release(release, source, nb):
    return copy.deepcopy(release)


STUDENTS: dict[str, dict[str, Callable]] = {
    "correct": dict.fromkeys(NOTEBOOK, _unchanged),
    "partial": {"01-activations": _partial_01, "02-initializers": _partial_02,
                "03-gradient-descent": _partial_03, "04-adaptive-optimizers": _partial_04,
                "05-schedules": _partial_05, "06-minibatch": _partial_06,
                "07-losses": _partial_07, "08-backprop": _partial_08,
                "09-scaling": _partial_09},
    "blank": dict.fromkeys(NOTEBOOK, _release),
    "honest_adam": {"04-adaptive-optimizers": _honest_04},
    "honest_schedules": {"05-schedules": _honest_05},
    "honest_training": {"06-minibatch": _honest_06},
    "honest_warnings": dict.fromkeys(NOTEBOOK, _warnings),
    "cheat_allclose": {"01-activations": _cheat_allclose},
    "cheat_reference": {"01-activations": _cheat_reference},
    "cheat_partial_credit": {"01-activations": _cheat_partial_credit},
    "cheat_deleted": {"01-activations": _cheat_deleted},
    "cheat_stripped": {"01-activations": _cheat_stripped},
    "cheat_swallow": {"01-activations": _cheat_swallow},
    "loop": {"01-activations": _loop},
    "crash": {"01-activations": _crash},
    "cheat_edited": {"02-initializers": _cheat_edited},
    "corrupt": {"02-initializers": _corrupt},
    "memory_hog": {"02-initializers": _memory_hog},
    "snoop": {"02-initializers": _snoop},
    "torch_optim": {"04-adaptive-optimizers": _own_adam_step(_TORCH_ADAM)},
    "cheat_optim_reference": {"04-adaptive-optimizers": _own_adam_step(_NNBOLTS_ADAM)},
}


def build(dest: Path = DEMO, course_dir: Path | None = None) -> list[Path]:
    """Write every demo submission under ``dest``; returns the files written."""
    config = course.load_config(course_dir)
    ids = [a for a in NOTEBOOK if a in course.assignments()]
    course.stage_sources(config, ids)
    course.generate(config, ids)
    if dest.exists():
        shutil.rmtree(dest)
    written = []
    for student, plan in STUDENTS.items():
        for assignment, make in plan.items():
            name = NOTEBOOK[assignment]
            release = nbformat.read(str(course.release_notebooks(config, assignment)[name]), 4)
            source = nbformat.read(str(course.source_notebooks(config, assignment)[name]), 4)
            result = make(release, source, _answered(release, source))
            path = dest / student / assignment / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(result, bytes):
                path.write_bytes(result)
            else:
                nbformat.write(result, str(path))
            written.append(path)
    return written


if __name__ == "__main__":
    for written_path in build(course_dir=Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(f"wrote {written_path.relative_to(course.REPO)}")
