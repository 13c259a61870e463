"""The similarity report (instructor/similarity.py) on synthetic submissions: no kernel, no
gradebook, pure ``ast``."""

from __future__ import annotations

import html

import nbformat
import pytest

from instructor import similarity

STUB = '''def momentum_step(params, grads, buffers, lr, mu):
    """One step of SGD with momentum, in place; returns nothing."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''

STUB_CLIP = '''def clip_by_norm(grads, max_norm):
    # YOUR CODE HERE
    raise NotImplementedError()
'''

ORIGINAL = '''import torch


def momentum_step(params, grads, buffers, lr, mu):
    """One step of SGD with momentum, in place; returns nothing."""
    with torch.no_grad():
        for p, g, b in zip(params, grads, buffers):
            b.mul_(mu).add_(g)  # the buffer first
            p.sub_(lr * b)
'''

ORIGINAL_CLIP = '''def clip_by_norm(grads, max_norm):
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g.mul_(scale)
    return total
'''

# the same code, every identifier renamed, comments and docstrings changed, blank lines moved,
# an alias for torch
RENAMED = '''import torch as T
def momentum_step(weights, gradients, velocity, step_size, beta):
    # my own implementation!!
    with T.no_grad():

        for w, dw, v in zip(weights, gradients, velocity):
            v.mul_(beta).add_(dw)
            w.sub_(step_size * v)
'''

RENAMED_CLIP = '''def clip_by_norm(gs, limit):
    """Clip."""
    n = torch.sqrt(sum((x ** 2).sum() for x in gs))
    factor = limit / (n + 1e-6)
    if factor < 1:
        for x in gs:
            x.mul_(factor)
    return n
'''

# two independent, correct solutions written differently
HONEST = '''def momentum_step(params, grads, buffers, lr, mu):
    for i in range(len(params)):
        new_buffer = mu * buffers[i] + grads[i]
        buffers[i].copy_(new_buffer)
        params[i].data -= lr * new_buffer
'''

HONEST_CLIP = '''def clip_by_norm(grads, max_norm):
    norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])
    total_norm = torch.linalg.vector_norm(norms)
    coefficient = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(coefficient)
    return total_norm
'''

OTHER = '''def momentum_step(params, grads, buffers, lr, mu):
    updated = [torch.add(g, b, alpha=mu) for g, b in zip(grads, buffers)]
    idx = 0
    while idx < len(params):
        buffers[idx][...] = updated[idx]
        params[idx].add_(updated[idx], alpha=-lr)
        idx += 1
'''

OTHER_CLIP = '''def clip_by_norm(grads, max_norm):
    squared = 0.0
    for grad in grads:
        squared = squared + float((grad * grad).sum())
    norm = squared ** 0.5
    if norm > max_norm:
        ratio = max_norm / (norm + 1e-6)
        for grad in grads:
            grad *= ratio
    return torch.tensor(norm)
'''


def notebook(*solutions: str, added: str | None = None):
    """A notebook laid out as nbgrader releases one: a locked markdown cell, solution cells
    (grade ids ``momentum`` and ``clip``), a locked test cell; optionally a cell the student
    added."""
    intro = nbformat.v4.new_markdown_cell("# Momentum")
    intro.metadata["nbgrader"] = {"locked": True, "grade": False, "solution": False,
                                  "grade_id": "intro"}
    cells = [intro]
    for grade_id, source in zip(("momentum", "clip"), solutions):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"locked": False, "grade": False, "solution": True,
                                     "grade_id": grade_id}
        cells.append(cell)
    test = nbformat.v4.new_code_cell("assert True\n" + ORIGINAL)  # locked: never compared
    test.metadata["nbgrader"] = {"locked": True, "grade": True, "solution": False,
                                 "grade_id": "test_momentum", "points": 2}
    cells.append(test)
    if added is not None:
        cells.append(nbformat.v4.new_code_cell(added))
    return nbformat.v4.new_notebook(cells=cells)


RELEASE = {"momentum": notebook(STUB, STUB_CLIP)}


def compare(students: dict[str, object], threshold: float = 0.0) -> similarity.Result:
    return similarity.compare("07-momentum", {s: {"momentum": nb} for s, nb in students.items()},
                              RELEASE, threshold)


def scores(result: similarity.Result) -> dict[frozenset, float]:
    return {frozenset((p.a, p.b)): p.score for p in result.pairs}


def test_a_renamed_copy_scores_one():
    assert similarity.similarity(similarity.fingerprint(ORIGINAL),
                                 similarity.fingerprint(RENAMED)) == pytest.approx(1.0)
    got = scores(compare({"ann": notebook(ORIGINAL, ORIGINAL_CLIP),
                          "bob": notebook(RENAMED, RENAMED_CLIP)}))
    assert got[frozenset(("ann", "bob"))] == pytest.approx(1.0)


def test_a_lightly_edited_copy_still_scores_high():
    edited = RENAMED.replace("w.sub_(step_size * v)", "w.add_(-step_size * v)")
    got = scores(compare({"ann": notebook(ORIGINAL, ORIGINAL_CLIP),
                          "bob": notebook(edited, RENAMED_CLIP),
                          "cat": notebook(HONEST, HONEST_CLIP),
                          "dan": notebook(OTHER, OTHER_CLIP)}))
    # one of eleven lines changed: the copy loses that statement, and stays far above any
    # pair of independent solutions
    edited_copy = got.pop(frozenset(("ann", "bob")))
    assert edited_copy > 0.7 and edited_copy > max(got.values()) + 0.3


def test_independent_honest_solutions_score_lower_and_are_not_reported():
    students = {"ann": notebook(ORIGINAL, ORIGINAL_CLIP), "bob": notebook(RENAMED, RENAMED_CLIP),
                "cat": notebook(HONEST, HONEST_CLIP), "dan": notebook(OTHER, OTHER_CLIP)}
    got = scores(compare(students))
    copy = got[frozenset(("ann", "bob"))]
    honest = {pair: s for pair, s in got.items() if pair != frozenset(("ann", "bob"))}
    assert len(honest) == 5 and max(honest.values()) < 0.5 < copy
    reported = compare(students, similarity.THRESHOLD).pairs
    assert [(p.a, p.b) for p in reported] == [("ann", "bob")]
    assert reported[0].cells[0][1] == pytest.approx(1.0)  # a cell named, with its similarity


def test_blank_and_stub_only_submissions_are_not_compared():
    students = {"blank1": notebook(STUB, STUB_CLIP), "blank2": notebook(STUB, STUB_CLIP),
                "empty": notebook("# YOUR CODE HERE\n", ""),
                "ann": notebook(ORIGINAL, ORIGINAL_CLIP), "cat": notebook(HONEST, HONEST_CLIP)}
    result = compare(students)
    assert result.too_little == ["blank1", "blank2", "empty"]
    assert result.compared == ["ann", "cat"]
    assert all({p.a, p.b} == {"ann", "cat"} for p in result.pairs)


def test_the_release_stub_is_not_counted():
    # the stub's signature is in every submission: counted, it would make honest students look
    # alike
    students = {"ann": {"momentum": notebook(ORIGINAL, ORIGINAL_CLIP)},
                "cat": {"momentum": notebook(HONEST, HONEST_CLIP)}}
    without = similarity.compare("07-momentum", students, RELEASE, 0.0).pairs[0].score
    counted = similarity.compare("07-momentum", students, {}, 0.0).pairs[0].score
    assert without < counted
    # the raise the stub had, left below a solution, adds nothing either
    kept = notebook(RENAMED + "    raise NotImplementedError()\n", RENAMED_CLIP)
    got = scores(compare({"ann": notebook(ORIGINAL, ORIGINAL_CLIP), "bob": kept}))
    assert got[frozenset(("ann", "bob"))] == pytest.approx(1.0)


def test_code_moved_to_an_added_cell_is_compared():
    moved = notebook(STUB, RENAMED_CLIP, added=RENAMED)
    got = scores(compare({"ann": notebook(ORIGINAL, ORIGINAL_CLIP), "bob": moved}))
    assert got[frozenset(("ann", "bob"))] > 0.9


def test_a_cell_that_does_not_parse_is_left_out_and_counted():
    broken = notebook(ORIGINAL, "def clip_by_norm(grads, max_norm:\n    return")
    result = compare({"ann": notebook(ORIGINAL, ORIGINAL_CLIP), "bob": broken})
    assert result.unparsed == {"bob": 1}
    assert result.pairs and 0 < result.pairs[0].score < 1


def test_ipython_magics_do_not_stop_the_parse():
    assert similarity.fingerprint("%time x = 1\n!ls\n" + ORIGINAL) == similarity.fingerprint(
        ORIGINAL)


def test_the_page_escapes_names_and_links_feedback_and_notebook(tmp_path):
    odd = "eve<script>\u202e"
    graded = [(student, "07-momentum", "momentum", nb) for student, nb in
              {"ann": notebook(ORIGINAL, ORIGINAL_CLIP), odd: notebook(RENAMED, RENAMED_CLIP),
               "blank": notebook(STUB, STUB_CLIP)}.items()]
    release = tmp_path / "release.ipynb"
    nbformat.write(RELEASE["momentum"], str(release))
    summary = similarity.run(tmp_path, graded, {"07-momentum": {"momentum": release}})
    page = (tmp_path / ".pipeline" / "similarity.html").read_text()
    assert summary["html"] == str(tmp_path / ".pipeline" / "similarity.html")
    assert "<script>" not in page and "\u202e" not in page
    assert html.escape("eve<script>") in page
    assert 'href="../feedback/ann/07-momentum/momentum.html"' in page
    assert 'href="../autograded/ann/07-momentum/momentum.ipynb"' in page
    assert "eve%3Cscript%3E%E2%80%AE/07-momentum/momentum.html" in page
    result = summary["assignments"]["07-momentum"]
    assert result["pairs_reported"] == 1 and result["not_compared"] == ["blank"]
    assert result["top"][0]["score"] == pytest.approx(1.0)


def test_a_class_of_two_hundred_is_compared_quickly():
    import time

    students = {f"s{i:03d}": notebook(
        ORIGINAL.replace("lr * b", f"lr * b * {i}"), HONEST_CLIP) for i in range(200)}
    t0 = time.perf_counter()
    compare(students, threshold=1.1)
    assert time.perf_counter() - t0 < 30
