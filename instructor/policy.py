"""Which of torch's own implementations an exercise rules out, checked on the trusted side
against the source of every cell the student could edit (best-effort, static).

An exercise that asks for primitives -- an Adam step, an initializer, the sigmoid -- gives no
credit for torch's version of the same thing. The kernel is not watched for this (the verdict
never depends on what happens inside it): the code is read. A rule names dotted prefixes
(``torch.optim``: anything under it, however imported or aliased) or attribute names
(``.sigmoid``: ``torch.sigmoid``, ``x.sigmoid()``, ``F.sigmoid``), for the whole notebook
(``"*"``) or for the named graded functions and everything of the student's they call. A test
cell whose hidden tests use a function that breaks a rule scores 0 with the rule's reason; the
student's other functions are unaffected.

Best-effort, and documented as such: code that builds names at run time (``getattr`` with a
computed name, ``importlib``, ``__import__``, ``eval``/``exec``) cannot be read through; such
code is flagged for the instructor, not scored.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

_ACTIVATIONS = {
    "sigmoid": (".sigmoid", ".sigmoid_", ".expit"),
    "tanh": (".tanh", ".tanh_"),
    "relu": (".relu", ".relu_"),
    "leaky_relu": (".leaky_relu", ".leaky_relu_"),
    "elu": (".elu", ".elu_"),
    "silu": (".silu", ".silu_"),
    "softmax": (".softmax", "._softmax"),
}

RULES: dict[str, dict[str, tuple[str, ...]]] = {
    "01-activations": dict(_ACTIVATIONS),
    "02-initializers": {"*": ("torch.nn.init",),
                        "clip_grad_norm_": ("torch.nn.utils.clip_grad",
                                            "torch.nn.utils.clip_grad_norm_",
                                            "torch.nn.utils.clip_grad_norm",
                                            "torch.nn.utils.get_total_norm",
                                            "torch.nn.utils.clip_grads_with_norm_")},
    "03-gradient-descent": {"*": ("torch.optim",)},
    "04-adaptive-optimizers": {"*": ("torch.optim", "._fused_adam_", "._fused_adamw_",
                                     "._fused_adagrad_")},
    "05-schedules": {"*": ("torch.optim.lr_scheduler",)},
    "06-minibatch": {"minibatches": ("torch.utils.data",)},
    "07-losses": {"mse": (".mse_loss",), "mse_grad": (".mse_loss", "torch.autograd", ".backward"),
                  "log_softmax": (".log_softmax", "._log_softmax", ".logsumexp", ".softmax"),
                  "cross_entropy": (".cross_entropy", ".nll_loss", ".log_softmax", ".logsumexp"),
                  "cross_entropy_grad": (".cross_entropy", ".nll_loss", "torch.autograd",
                                         ".backward"),
                  "kl_div": (".kl_div", "torch.distributions")},
    "08-backprop": {name: ("torch.autograd", ".backward", "torch.func", "functorch")
                    for name in ("mlp_backward", "numerical_gradient", "gradient_check")},
    # the kernel has no sockets, but a ring written with torch.distributed is not the exercise
    "09-scaling": {"ring_all_reduce": ("torch.distributed",)},
}
"""Per assignment: ``{graded function or "*": (dotted prefix or ".attribute", ...)}``."""

_COMPUTED = {"getattr", "__import__", "eval", "exec", "compile", "import_module"}


@dataclass
class Finding:
    """What the policy found in one notebook."""

    zero: dict[str, str] = field(default_factory=dict)  # test cell grade_id -> reason
    flags: list[str] = field(default_factory=list)


@dataclass
class _Definition:
    dotted: set[str] = field(default_factory=set)  # torch.optim.Adam, resolved through aliases
    attributes: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # names it reads
    computed: bool = False


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _aliases(trees) -> dict[str, str]:
    found = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        found[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        found[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return found


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id, node.id)
    return ".".join([root, *reversed(parts)])


def _use(tree: ast.AST, aliases: dict[str, str]) -> _Definition:
    d = _Definition()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            d.attributes.add(node.attr)
            dotted = _dotted(node, aliases)
            if dotted:
                d.dotted.add(dotted)
        elif isinstance(node, ast.Name):
            d.names.add(node.id)
            if node.id in aliases:
                d.dotted.add(aliases[node.id])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in node.names:
                d.dotted.add(f"{module}.{alias.name}" if module else alias.name)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "getattr":  # a computed attribute of an imported module
                d.computed |= (len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant)
                               and isinstance(node.args[0], ast.Name)
                               and node.args[0].id in aliases)
            elif isinstance(func, ast.Name) and name in _COMPUTED:  # eval, not model.eval
                d.computed = True
            elif isinstance(func, ast.Attribute) and name == "import_module":
                d.computed = True
    return d


def _definitions(trees, aliases) -> dict[str, _Definition]:
    """The student's top-level names and what each one's code uses."""
    found: dict[str, _Definition] = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                targets = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                nodes = node.targets if isinstance(node, ast.Assign) else [node.target]
                targets = [n.id for t in nodes for n in ast.walk(t) if isinstance(n, ast.Name)]
            else:
                targets = []
            use = _use(node, aliases)
            for name in targets or ["<module>"]:
                merged = found.setdefault(name, _Definition())
                merged.dotted |= use.dotted
                merged.attributes |= use.attributes
                merged.names |= use.names
                merged.computed |= use.computed
    return found


def _breaks(d: _Definition, patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        if pattern.startswith("."):
            if pattern[1:] in d.attributes:
                return pattern[1:]
        else:
            for name in sorted(d.dotted):
                if name == pattern or name.startswith(pattern + "."):
                    return name
    return None


def _reach(start: str, defs: dict[str, _Definition]) -> list[str]:
    seen, todo = [], [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.append(name)
        todo.extend(sorted(defs[name].names & defs.keys()))
    return seen


def check(assignment: str, student_sources: list[str], tests: dict[str, str]) -> Finding:
    """``student_sources``: the code of every cell the student could edit; ``tests``: each test
    cell's grade_id and hidden-test source. Returns the test cells to zero and the flags."""
    finding = Finding()
    rules = RULES.get(assignment, {})
    trees = []
    for source in student_sources:
        try:
            trees.append(ast.parse(_strip_magics(source)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    aliases = _aliases(trees)
    defs = _definitions(trees, aliases)
    course = sorted({name for d in defs.values() for name in d.dotted
                     if name == "nnbolts" or name.startswith("nnbolts.")})
    if course:
        finding.flags.append(f"uses the course library ({', '.join(course[:3])}), which the "
                             "grading kernels do not have: the reference implementation")
    if any(d.computed for d in defs.values()):
        finding.flags.append("builds names at run time (getattr, importlib, eval, exec): the "
                             "torch-use policy cannot read through it (best-effort)")
    if not rules:
        return finding
    used_by_test = {}
    for gid, block in tests.items():
        try:
            tree = ast.parse(block)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        used_by_test[gid] = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            c.value for c in ast.walk(tree)
            if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    for function, patterns in rules.items():
        roots = sorted(defs) if function == "*" else [function]
        for root in roots:
            for name in _reach(root, defs):
                what = _breaks(defs[name], patterns)
                if what is None:
                    continue
                reason = (f"{root} uses torch's {what}" + (f" (through {name})" if name != root
                                                           else "") +
                          ", which this exercise asks you to implement yourself; the tests "
                          f"of {root} score 0")
                for gid, used in used_by_test.items():
                    if root in used and gid not in finding.zero:
                        finding.zero[gid] = reason
                break
    return finding
