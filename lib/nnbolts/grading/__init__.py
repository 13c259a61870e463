"""What the hidden tests of the course's exercises call: compare a student's function with its
``nnbolts`` reference over seeded random cases, on every available device and in float32 and
float64, and explain the first disagreement.

A hidden test is one call; it returns ``None`` when the student's code is right and raises an
``AssertionError`` (:class:`GradingFailure`) whose message is the feedback otherwise::

    check_elementwise(sigmoid_grad, nnbolts.activations.sigmoid_grad)
    check_initializer(kaiming_uniform_, nnbolts.init.kaiming_uniform_,
                      kwargs=[{"nonlinearity": "relu"}])
    check_rule(adam_init, adam_step, rule="adam")
    check_schedule(cosine, nnbolts.schedules.cosine, configs=[dict(lr=0.1, total_steps=50)])
    check_minibatches(minibatches)
    check_ring_all_reduce(in_kernel(your_ring_all_reduce))
    check_function(fan_in_and_fan_out, nnbolts.init.fan_in_and_fan_out,
                   lambda case: case.randn(*case.shape(min_dims=2)))

A message names the function, the device, the dtype, the case and the call (shapes and
hyperparameters, never the hidden data in bulk), the first differing index with the expected
and received values and the largest errors, and, when the output equals a known wrong variant
(no bias correction, ε inside the root, wrong sign, off-by-one step count, momentum buffer
started at zero, ...), says "This looks like: <mistake> (hint: ...)". For example::

    adam_step: wrong values in new_param (on CPU, float32, step 1 of 8, hyperparameter set 1 of
    4: lr=0.01)
      call: adam_step(param, grad, state, lr=0.01) where param is a float32 tensor of shape (5,)
      on CPU; grad is ...; state is the state your adam_init returned (...)
      first difference at index [0]: expected 0.3304, got 0.3021
      5 of 5 elements differ; max abs error 0.0316, max rel error 0.0957 (tolerance ...)
      This looks like: no bias correction (hint: m and v start at 0, ...)

Checked every time: inputs are cloned for each side and the student's must be unchanged
afterwards (a pure function must not modify its arguments); outputs keep the input's device and
dtype ("returned a float64 tensor for float32 input", "returned a CPU tensor for a cuda:0
input"); NaN/inf where the reference is finite is reported as such; an exception in the
student's code is reported with its type, message and the line of the student's code.

Tolerances (:func:`tolerance`): float32 rtol 1.3e-6·k, atol 1e-5·k (torch's defaults); float64
rtol 1e-7·k, atol 1e-9·k; k = 1 for single calls, 2 for optimizer trajectories.

Where the checks run
--------------------
A hidden test never runs in the student's kernel. ``instructor/trusted.py`` runs each test cell's
hidden block in the grader's own process, which the confined kernel cannot read, write, signal
or trace; every name the block reads and does not define (``adam_step``, ``answer``) is fetched
from the kernel by ``_remote``: a plain value by copy, a function as a proxy whose every call
is one **observation** -- the arguments travel to the kernel in ``student_side/observe.py``'s wire
format, the student's function runs there, and what it returned (and what it did to its
arguments) comes back as plain data, every type and size checked. The reference, the
comparison and the verdict all happen here; what the kernel sends is never executed. A cell
earns its points only when its block ran to the end on the trusted side; no reply, a malformed
reply, a timeout or a dead kernel is 0 for that cell, with a message.

The same ``check_*`` functions also run on plain local functions (the grader's own tests, and
``trusted.LocalChannel``, which answers observations from a dict standing for the notebook):
a local call simply runs.

What replaced the in-kernel guard
---------------------------------
Until the verdict moved out of the kernel, this package defended itself inside the process the
student's code controlled (about 900 lines: captured "genuine" comparison functions, integrity
checks, a call profiler that forbade the reference, fingerprints of pasted copies, ``SIGALRM``
time limits, a static audit). No check inside one Python process can be protected from other
code in it, so each measure was replaced by one that does not depend on the kernel:

* **Patched comparison functions, torch modes, replaced references** (``torch.allclose``,
  ``Tensor.__eq__``, a ``TorchFunctionMode``, a rebound ``nnbolts.optim.adam_step``): the
  comparison and the reference run in the grader's process, which student code never enters.
  Values arrive as plain data (a tensor subclass or a ``str`` that equals everything cannot
  cross the wire), and :mod:`._tensors` still refuses tensor subclasses of local functions.
* **Calling the reference, pasting its source**: the kernel has no ``nnbolts`` in memory and
  cannot read the course's folders (``student_side/sandbox.py`` confines it), so there is no
  reference to call; a notebook that imports the course library is flagged by the torch-use
  policy (``instructor/policy.py``) and fails in the kernel anyway.
* **A lookup table of the hidden answers**: the cases are drawn from a fresh seed per run
  (:data:`._cases.RUN_SEED`, recorded with the run so that a regrade can replay it).
* **torch's own implementation** (``torch.sigmoid`` in ``sigmoid``, ``torch.optim.Adam``,
  ``torch.nn.init``, a fused kernel): a per-exercise policy read statically, on the trusted
  side, from the source of every cell the student could edit (``instructor/policy.py``;
  best-effort: names built at run time are flagged for the instructor, not scored).
* **Infinite loops**: each observation has a deadline (``timeout=`` per call, ``budget=`` for
  all calls of one test, see :class:`Session`); the channel interrupts a kernel that does not
  answer in time and scores the cell 0. The kernel's whole process tree is further limited in
  memory, processes and CPU time by ``student_side/sandbox.py``.
* **Hiding a failure, a flag or the test itself** (input transformers, a replaced
  ``run_code``, a custom exception handler, printing the hidden source): the hidden block and
  the quiz keys never enter the kernel, and the trusted side writes each test cell's output
  and decides its flags itself.
"""

from ._cases import DTYPES, Case, cases, devices
from ._compare import tolerance
from ._engine import DEFAULT_BUDGET, DEFAULT_TIMEOUT, Call, check_elementwise, check_function
from ._errors import GradingFailure, GradingSetupError
from ._inits import check_initializer
from ._minibatches import check_minibatches
from ._mistakes import Mistake, add_known_mistake, known_mistakes
from ._parallel_mistakes import check_ring_all_reduce
from ._remote import exclusive, harness, in_kernel
from ._rules import RULES, RuleSpec, check_rule
from ._schedules import check_schedule

check_activation = check_elementwise
"""Another name for :func:`check_elementwise` (it also grades softmax and its derivatives)."""

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_TIMEOUT",
    "DTYPES",
    "RULES",
    "Call",
    "Case",
    "GradingFailure",
    "GradingSetupError",
    "Mistake",
    "RuleSpec",
    "add_known_mistake",
    "cases",
    "check_activation",
    "check_elementwise",
    "check_function",
    "check_initializer",
    "check_minibatches",
    "check_ring_all_reduce",
    "check_rule",
    "check_schedule",
    "devices",
    "exclusive",
    "harness",
    "in_kernel",
    "known_mistakes",
    "tolerance",
]
