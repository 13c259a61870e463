r"""L-BFGS (Liu & Nocedal, 1989): a quasi-Newton method that builds an approximation of the
inverse Hessian from the last few parameter and gradient changes, in PyTorch's form
(``torch.optim.LBFGS``), with an optional strong-Wolfe line search.

Unlike every other rule in :mod:`nnbolts.optim` it has no pure one-tensor pair: one step
re-evaluates the loss several times (it needs a closure) and treats all parameters as one flat
vector (the curvature pairs mix every coordinate).

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _to_scalar

from .._checks import check_choice, check_int, check_number
from ._base import check_lr

__all__ = ["LBFGS"]


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through two points with values and slopes, clipped to
    ``bounds`` (the bisection of the bounds when the cubic has no minimum). torch's port of
    minFunc's ``polyinterp``; the arguments may be floats or 0-d tensors."""
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square.sqrt()
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """A step ``t`` along ``d`` satisfying the strong Wolfe conditions
    :math:`L(\\theta + t d) \\le L(\\theta) + c_1 t\\, g^\\top d` and
    :math:`|g(\\theta + t d)^\\top d| \\le c_2 |g^\\top d|`: bracket, then zoom by cubic
    interpolation. torch's port of minFunc's ``WolfeLineSearch``, step for step; returns
    ``(loss, flat_grad, t, evaluations)``."""
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    # bracketing phase: an interval containing a point that satisfies the conditions
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        # extrapolate: a step between 1.01 t and 10 t
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev = tmp, f_new
        g_prev = g_new.clone(memory_format=torch.contiguous_format)
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom phase: shrink the bracket until a point satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # a trial too close to an end of the bracket moves to 10% of its length inside
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # not enough decrease, or not below the lowest point: the trial becomes the high end
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True                                   # strong Wolfe conditions hold
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]          # the old low end becomes high
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos] = t                              # the trial becomes the low end
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[low_pos] = gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def _loss_value(loss) -> float:
    """The closure's loss as a Python float (what torch's ``float(loss)`` gives, without its
    warning about converting a tensor that requires grad)."""
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _check_lbfgs(lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size,
                 line_search_fn):
    check_lr(lr)
    check_int("max_iter", max_iter, low=1)
    if max_eval is not None:
        check_number("max_eval value", max_eval, low=1)
    check_number("tolerance_grad value", tolerance_grad, low=0.0)
    check_number("tolerance_change value", tolerance_change, low=0.0)
    check_int("history_size", history_size, low=1)
    if line_search_fn is not None:
        check_choice("line_search_fn", line_search_fn, {"strong_wolfe"})


class LBFGS(torch.optim.Optimizer):
    r"""L-BFGS; a drop-in for ``torch.optim.LBFGS`` (same options, numerics and state dict).

    One call to ``step(closure)`` runs up to ``max_iter`` iterations :math:`k` on the flat vector
    :math:`\theta` of all parameters, with gradient :math:`g`, and the last ``history_size``
    pairs :math:`s_i = \theta_{i+1} - \theta_i`, :math:`y_i = g_{i+1} - g_i` (a pair is kept only
    when :math:`y_i^\top s_i > 10^{-10}`, which keeps the approximation positive definite):

    .. math::
        q &\leftarrow -g; \quad
        \text{for } i = k-1, \dots, 0:\ a_i = \frac{s_i^\top q}{y_i^\top s_i},\
        q \leftarrow q - a_i y_i \\
        r &\leftarrow \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}}\, q; \quad
        \text{for } i = 0, \dots, k-1:\
        r \leftarrow r + \Big(a_i - \frac{y_i^\top r}{y_i^\top s_i}\Big)\, s_i \\
        \theta &\leftarrow \theta + \eta_k\, r

    The two-loop recursion gives the direction :math:`r \approx -H^{-1} g` without ever forming
    a matrix (the first iteration ever takes :math:`r = -g`). The step length :math:`\eta_k`
    (torch's variable ``t``) is the learning rate :math:`\eta` (the first iteration ever uses
    :math:`\min(1, 1/\lVert g\rVert_1)\,\eta`) or, with ``line_search_fn="strong_wolfe"``, a
    length found from that start that satisfies the strong Wolfe conditions (enough decrease,
    and a slope along :math:`r` flattened to within 0.9 of the initial one). A call stops early
    when :math:`\max|g| \le` ``tolerance_grad``, when the directional derivative
    :math:`g^\top r` exceeds minus ``tolerance_change``, when :math:`\max|\eta_k r|` or the
    change of the loss falls below ``tolerance_change``, or after ``max_eval`` evaluations of the
    closure (default ``max_iter * 5 // 4``).

    Like torch's: one parameter group only; the state (torch's keys: ``func_evals``,
    ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``,
    ``prev_flat_grad``, ``prev_loss``, ``al``) lives under the first parameter; gradients may be
    sparse and parameters complex (as pairs of reals); every tensor of the state stays on the
    parameters' device, and the stopping tests read scalars back to the host. Meta tensors are
    refused: every iteration branches on values. It is a class only: there is no pure
    one-tensor pair (:attr:`requires_closure` says so to training loops).

    Equivalent torch call: ``torch.optim.LBFGS(params, lr, max_iter, max_eval, tolerance_grad,
    tolerance_change, history_size, line_search_fn).step(closure)``.
    Explained in: book/optimizers.md.

    Example::

        >>> x = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
        >>> opt = LBFGS([x], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((x - 1.0) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> torch.allclose(x.detach(), torch.ones(2))
        True
    """

    #: ``step`` must be given a closure (it evaluates the loss several times)
    requires_closure = True

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        _check_lbfgs(lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size,
                     line_search_fn)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size,
            line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        self._numel_cache = None

    # ----------------------------------------------------------------------------------------
    # the parameters as one flat vector
    # ----------------------------------------------------------------------------------------

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(2 * p.numel() if torch.is_complex(p) else p.numel()
                                    for p in self._params)
        return self._numel_cache

    def _gather_flat_grad(self) -> torch.Tensor:
        views = []
        for p in self._params:
            if p.grad is None:
                view = p.new(p.numel()).zero_()
            elif p.grad.is_sparse:
                view = p.grad.to_dense().view(-1)
            else:
                view = p.grad.view(-1)
            if torch.is_complex(view):
                view = torch.view_as_real(view).view(-1)
            views.append(view)
        return torch.cat(views, 0)

    def _add_grad(self, step_size, update) -> None:
        """θ ← θ + step_size · update, slice by slice."""
        offset = 0
        for p in self._params:
            if torch.is_complex(p):
                p = torch.view_as_real(p)
            numel = p.numel()
            p.add_(update[offset:offset + numel].view_as(p), alpha=step_size)
            offset += numel
        assert offset == self._numel()

    def _clone_param(self):
        return [p.clone(memory_format=torch.contiguous_format) for p in self._params]

    def _set_param(self, params_data) -> None:
        for p, data in zip(self._params, params_data):
            p.copy_(data)

    def _directional_evaluate(self, closure, x, t, d):
        """Loss and flat gradient at x + t d; the parameters are restored to x."""
        self._add_grad(t, d)
        loss = _loss_value(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # ----------------------------------------------------------------------------------------
    # the step
    # ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss before the first one.

        ``closure`` must clear the gradients, re-evaluate the model, call ``backward`` and
        return the loss; it is called with gradients enabled.
        """
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step needs a closure that re-evaluates the loss: "
                            "opt.step(closure)")
        if any(p.device.type == "meta" for p in self._params):
            raise NotImplementedError(
                "LBFGS cannot step on meta tensors: its stopping tests, curvature test and "
                "line search branch on values that meta tensors do not have")
        closure = torch.enable_grad()(closure)

        group = self.param_groups[0]
        lr = _to_scalar(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        # one state for the whole vector, registered under the first parameter (so that
        # load_state_dict casts it to the parameters' device and dtype)
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = _loss_value(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._gather_flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:        # already stationary
            return orig_loss

        d = state.get("d")
        t = state.get("t")
        old_dirs = state.get("old_dirs")                    # the y_i
        old_stps = state.get("old_stps")                    # the s_i
        ro = state.get("ro")                                # 1 / (y_iᵀ s_i)
        H_diag = state.get("H_diag")                        # sᵀy / yᵀy, the initial scaling
        prev_flat_grad = state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # the direction
            if state["n_iter"] == 1:
                d = flat_grad.neg()                         # steepest descent to start
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad.sub(prev_flat_grad)
                s = d.mul(t)
                ys = y.dot(s)
                if ys > 1e-10:                              # keep only positive curvature
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                # the two-loop recursion, in one buffer
                q = flat_grad.neg()
                for i in range(num_old - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    q.add_(old_dirs[i], alpha=-al[i])
                d = r = torch.mul(q, H_diag)
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    r.add_(old_stps[i], alpha=al[i] - be_i)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            # the step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)                          # directional derivative gᵀd
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd,
                    max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = flat_grad.abs().max() <= tolerance_grad
            else:
                self._add_grad(t, d)                        # a fixed step
                if n_iter != max_iter:
                    # re-evaluate, except after the last iteration (the next step will)
                    with torch.enable_grad():
                        loss = _loss_value(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = flat_grad.abs().max() <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping tests
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if d.mul(t).abs().max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = d
        state["t"] = t
        state["old_dirs"] = old_dirs
        state["old_stps"] = old_stps
        state["ro"] = ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"] = prev_flat_grad
        state["prev_loss"] = prev_loss
        return orig_loss
