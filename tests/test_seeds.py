"""nnbolts.seeds (the book's seed offset) and tools/book_check.py (the perturbed execution).

The perturbed build is only worth something if the perturbation reaches the chapters' kernels:
a chapter that inspects its own configuration must see the other CPU kernels, the other thread
count and the other seed offset, and a chapter whose claim holds for one seed only must fail.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnbolts import seeds

ROOT = Path(__file__).resolve().parents[1]


def test_offset_defaults_to_zero_and_shifts_every_seed(monkeypatch):
    monkeypatch.delenv(seeds.ENV_VAR, raising=False)
    assert seeds.offset() == 0 and seeds.seed(3) == 3
    monkeypatch.setenv(seeds.ENV_VAR, "2")
    assert seeds.offset() == 2 and seeds.seed(3) == 5
    shifted = torch.randn(4, generator=seeds.generator(3))
    assert torch.equal(shifted, torch.randn(4, generator=torch.Generator().manual_seed(5)))
    assert seeds.manual_seed(1) == 3
    assert torch.equal(torch.randn(2), torch.randn(2, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("raw", ["one", "-1", "1.5"])
def test_a_malformed_offset_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv(seeds.ENV_VAR, raw)
    with pytest.raises(ValueError, match=f"Invalid {seeds.ENV_VAR}: '{raw}'"):
        seeds.offset()


@pytest.mark.parametrize("bad", [-1, 1.0, True, "3"])
def test_a_bad_seed_is_refused_by_value(bad):
    with pytest.raises(ValueError, match="Invalid seed"):
        seeds.seed(bad)


CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter that reads its configuration

```{code-cell} ipython3
import os, torch
from nnbolts import seeds
print(os.environ["ATEN_CPU_CAPABILITY"], torch.get_num_threads(), seeds.offset())
assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"
assert torch.get_num_threads() == 2
assert seeds.offset() == 0, "a claim that held for one seed only"
```
"""


@pytest.mark.slow
def test_book_check_reaches_the_kernels_and_fails_a_one_seed_claim(tmp_path):
    chapter = tmp_path / "chapter.md"
    chapter.write_text(CHAPTER)
    tool = [sys.executable, str(ROOT / "tools" / "book_check.py"), "--capability", "avx2",
            "--threads", "2", str(chapter)]
    passed = subprocess.run(tool + ["--seed-offset", "0"], capture_output=True, text=True,
                            timeout=300)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "1/1 chapters passed" in passed.stdout
    failed = subprocess.run(tool + ["--seed-offset", "1"], capture_output=True, text=True,
                            timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL" in failed.stdout and "a claim that held for one seed only" in failed.stdout
