"""Keep the library, the book and the public API from drifting apart.

- every public callable of nnbolts has a docstring;
- every "Explained in: book/<chapter>.md" in a docstring names a chapter that exists and is in
  the book's table of contents;
- every update rule in nnbolts.optim is a pure pair ``<rule>_init`` / ``<rule>_step`` plus a
  class, so exercises can mirror the signatures (L-BFGS, which needs a closure and all
  parameters at once, is a class only);
- the chapters import nnbolts rather than re-implementing it.
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import nnbolts
import nnbolts.optim
from tools.book_check import toc_chapters

ROOT = Path(__file__).resolve().parents[1]


def public_modules():
    names = []
    for info in pkgutil.walk_packages(nnbolts.__path__, "nnbolts."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def public_callables(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or not callable(obj):
            continue
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        yield name, obj


def toc_pages():
    return {str(page.relative_to(ROOT).with_suffix("")) for page in toc_chapters()}


@pytest.mark.parametrize("module_name", public_modules())
def test_public_callables_have_docstrings(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    missing = [name for name, obj in public_callables(module) if not inspect.getdoc(obj)]
    assert not missing, f"{module_name}: no docstring for {missing}"


def test_docstring_chapter_references_exist_in_the_book():
    pages = toc_pages()
    referenced = set()
    for path in (ROOT / "lib" / "nnbolts").rglob("*.py"):
        referenced |= set(re.findall(r"book/([a-z_]+)\.md", path.read_text()))
    assert referenced, "no docstring names a chapter"
    missing = sorted(ref for ref in referenced if f"book/{ref}" not in pages)
    assert not missing, f"docstrings point to chapters missing from _toc.yml: {missing}"


#: optimizer classes with no pure one-tensor pair, and why
CLASS_ONLY_OPTIMIZERS = {
    # one step re-evaluates the loss through a closure several times (line search, stopping
    # tests) and treats all parameters as one flat vector: its curvature pairs mix every
    # coordinate, so no update of one tensor from its own gradient exists
    "LBFGS": "needs a closure and all parameters at once",
}


def test_every_optimizer_rule_is_a_pure_pair_and_a_class():
    rules = [name[: -len("_step")] for name in nnbolts.optim.__all__ if name.endswith("_step")]
    assert len(rules) >= 10, rules
    for rule in rules:
        init, step = getattr(nnbolts.optim, f"{rule}_init"), getattr(nnbolts.optim, f"{rule}_step")
        params = list(inspect.signature(step).parameters.values())
        assert [p.name for p in params[:2]] == ["param", "grad"] or rule == "lookahead", rule
        assert all(p.kind is p.KEYWORD_ONLY for p in params[3:]), f"{rule}_step hyperparameters"
        assert callable(init)
    # and every exported optimizer class has its pair (SGDVelocity -> sgd_velocity_*), except
    # the few that cannot have one
    flat_rules = {rule.replace("_", ""): rule for rule in rules}
    classes = [name for name in nnbolts.optim.__all__
               if isinstance(getattr(nnbolts.optim, name), type)
               and issubclass(getattr(nnbolts.optim, name), torch.optim.Optimizer)
               and name != "RuleOptimizer"]
    assert set(CLASS_ONLY_OPTIMIZERS) <= set(classes), "an exception names no exported class"
    unpaired = [name for name in classes
                if name.lower() not in flat_rules and name not in CLASS_ONLY_OPTIMIZERS]
    assert not unpaired, f"optimizer classes without a pure *_init/*_step pair: {unpaired}"
    paired_exceptions = [name for name in CLASS_ONLY_OPTIMIZERS if name.lower() in flat_rules]
    assert not paired_exceptions, f"listed as class-only but have a pair: {paired_exceptions}"


@pytest.mark.parametrize("page", sorted(p for p in toc_pages() if p != "book/intro"))
def test_executed_chapters_use_the_library(page):
    source = (ROOT / f"{page}.md").read_text()
    assert "import nnbolts" in source or "from nnbolts" in source, f"{page} never calls nnbolts"
