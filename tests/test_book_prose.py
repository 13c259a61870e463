"""The book's text keeps its own rules (read from the chapters' sources; no build needed).

- it stands alone: no chapter or assignment leans on lecture slides or decks its reader never saw;
- one notation: every Greek letter a page uses, in text or math, is declared in the intro's table;
- numbers that describe a result come from the computation: a decimal number or a percentage in
  prose is glued (``{glue:text}``), printed by a cell, or written as math or code (a setting);
- no page names the machine it was built on;
- code cells teach: the ``assert`` lines that keep the prose true run in cells hidden from the
  reader; every random draw goes through ``nnbolts.seeds`` (so ``make book-check`` can shift it)
  and the thread count is the build's, not the chapter's.
"""

import re
from pathlib import Path

import jupytext
import pytest

from tools.book_check import toc_chapters

ROOT = Path(__file__).resolve().parents[1]
INTRO = ROOT / "book" / "intro.md"


PAGES = toc_chapters()
ASSIGNMENTS = sorted((ROOT / "solutions").glob("*/*.md"))


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def cells(path):
    return jupytext.read(path)["cells"]


def markdown(path):
    """The page's text, as the reader sees its source: markdown cells only."""
    return "\n\n".join(c["source"] for c in cells(path) if c["cell_type"] == "markdown")


def code_cells(path):
    return [c for c in cells(path) if c["cell_type"] == "code"]


FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,}|:{3,})(.*?)$.*?^[ \t]*\1[ \t]*$", re.S | re.M)
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)[^$\n]+?(?<!\\)\$")
ROLE = re.compile(r"\{([a-z:\-]+)\}`([^`]*)`")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
COMMENT = re.compile(r"<!--.*?-->", re.S)


def split_text(text):
    """(prose, math): prose without code, math, roles, link targets; math without anything else."""
    math = []

    def keep_math(match):
        math.append(match.group(0))
        return " "

    def fence(match):
        if match.group(2).strip().startswith(("{math}", "{eval-rst}")):
            math.append(match.group(0))
        return " "

    def role(match):
        if match.group(1) == "math":
            math.append(match.group(2))
        return " "

    text = COMMENT.sub(" ", text)
    text = FENCE.sub(fence, text)
    text = DISPLAY_MATH.sub(keep_math, text)
    text = ROLE.sub(role, text)
    text = INLINE_CODE.sub(" ", text)
    text = INLINE_MATH.sub(keep_math, text)
    text = LINK_TARGET.sub("]", text)
    return text, "\n".join(math)


# --------------------------------------------------------------------------- stands alone
LECTURE_MATERIAL = re.compile(
    r"\b(slides?|(lecture )?decks?|lecture notes?|lectures?)\b|\bcourse's\b", re.I)


@pytest.mark.parametrize("path", PAGES + ASSIGNMENTS, ids=ids(PAGES + ASSIGNMENTS))
def test_no_page_leans_on_lecture_material_its_reader_never_saw(path):
    prose, _ = split_text(markdown(path))
    found = sorted({m.group(0) for m in LECTURE_MATERIAL.finditer(prose)})
    assert not found, f"{path.name} refers to {found}: state the fact and cite a published source"


# --------------------------------------------------------------------------- notation
GREEK_NAMES = ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa "
               "lambda mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi "
               "omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()
UNICODE_GREEK = dict(zip(
    "αβγδεϵζηθϑικλμνξπρϱσςτυφϕχψωΓΔΘΛΞΠΣΥΦΨΩ",
    ("alpha beta gamma delta varepsilon epsilon zeta eta theta vartheta iota kappa lambda mu nu "
     "xi pi rho varrho sigma varsigma tau upsilon varphi phi chi psi omega Gamma Delta Theta "
     "Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()))
# Unicode φ is the curly phi in most fonts, so it stands for \varphi; ϵ is \epsilon.


def greek_letters(text):
    letters = {m.group(1) for m in re.finditer(r"\\([A-Za-z]+)(?![A-Za-z])", text)
               if m.group(1) in GREEK_NAMES}
    return letters | {UNICODE_GREEK[ch] for ch in text if ch in UNICODE_GREEK}


def declared_symbols():
    """The Greek letters of the first column of the intro's notation table."""
    text = INTRO.read_text()
    table = text[text.index("## Notation"):]
    table = table[:table.index("\n## ", 4)]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| $")]
    assert rows, "the intro has no notation table"
    return set().union(*(greek_letters(row) for row in rows))


def test_the_notation_table_gives_each_role_one_letter():
    declared = declared_symbols()
    # The letters the sources overload: the table must not bring them back.
    for letter in ("alpha", "varepsilon", "phi", "psi"):
        assert letter not in declared, f"\\{letter} is declared; it had several roles"
    assert {"eta", "mu", "epsilon", "lambda", "gamma", "rho", "theta"} <= declared


@pytest.mark.parametrize("path", PAGES + ASSIGNMENTS, ids=ids(PAGES + ASSIGNMENTS))
def test_every_greek_letter_is_in_the_notation_table(path):
    text = markdown(path)
    if path == INTRO:  # the table's last column lists other sources' letters on purpose
        text = re.sub(r"^\| \$.*$", "", text, flags=re.M)
    prose, math = split_text(text)
    undeclared = sorted(greek_letters(prose + "\n" + math) - declared_symbols())
    assert not undeclared, (
        f"{path.name} uses {undeclared}, which the intro's notation table does not declare "
        "(a torch argument such as RMSprop's `alpha` is written in code font)")


# --------------------------------------------------------------------------- numbers in prose
RESULT_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)+\s?%?|(?<![\w.])\d+\s?%")
# Numbers that name a thing rather than state a result: "Algorithm 8.4", "Sections 8.3 and 8.5",
# "arXiv:1412.6980", "Python 3.11".
CITATION = re.compile(
    r"(Algorithms?|Sections?|Chapters?|Figures?|Tables?|Eq\.|Equations?|versions?|Python|"
    r"PyTorch|torch|nbgrader|Book|ABI|Linux|arXiv:|§)"
    r"\s*((\d+\.)+\d+,?\s*(and|or|to|–)?\s*)*$", re.I)


def untraced_numbers(prose):
    found = []
    for match in RESULT_NUMBER.finditer(prose):
        token = match.group(0)
        before = prose[max(0, match.start() - 40):match.start()]
        if token.count(".") >= 2 or CITATION.search(before):
            continue
        found.append(token.strip())
    return found


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_numbers_in_prose_come_from_the_computation(path):
    prose, _ = split_text(markdown(path))
    found = untraced_numbers(prose)
    assert not found, (
        f"{path.name}: {found} typed into the prose; glue a computed result "
        "({glue:text}`name`), print it, or write a setting as math ($\\eta = 0.1$) or code")


def test_the_number_check_can_fail():
    prose, _ = split_text("The loss ends at 0.754, 25% above its minimum; with $\\eta = 0.5$ "
                          "(Algorithm 8.4, arXiv:1412.6980) and {glue:text}`final:.3f`.")
    assert untraced_numbers(prose) == ["0.754", "25%"]


# --------------------------------------------------------------------------- the build machine
MACHINE = re.compile(r"\b\d+-core\b|\bthis (machine|laptop|computer)\b|\bour (CPU|machine)\b|"
                     r"\bthe (CPU|machine) this book\b", re.I)


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_no_page_names_the_machine_it_was_built_on(path):
    prose, _ = split_text(markdown(path))
    found = sorted({m.group(0) for m in MACHINE.finditer(prose)})
    assert not found, f"{path.name} names the build machine: {found}"


# --------------------------------------------------------------------------- code cells
HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell"}


def is_hidden(cell):
    return bool(HIDDEN & set(cell["metadata"].get("tags", [])))


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_assertions_run_hidden_from_the_reader(path):
    shown = [c["source"].splitlines()[0] for c in code_cells(path)
             if not is_hidden(c) and re.search(r"^\s*assert\b", c["source"], re.M)]
    assert not shown, f"{path.name}: visible cells with assert lines (tag remove-cell): {shown}"


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_randomness_and_threads_come_from_the_build(path):
    for cell in code_cells(path):
        source = cell["source"]
        literal = re.findall(r"(torch\.manual_seed\(|Generator\([^)]*\)\.manual_seed\()", source)
        assert not literal, (f"{path.name}: a literal seed ({literal[0]}...) in "
                             f"{source.splitlines()[0]!r}; use nnbolts.seeds.generator(n)")
        assert not re.search(r"^torch\.set_num_threads", source, re.M), (
            f"{path.name} sets its own thread count; the build sets it (make book, book-check)")
