"""The docs' Python examples run (so they cannot go stale).

Every ```python block of docs/*.md is executed, in order, in one namespace per page. A block
preceded by a line ``<!-- not run: reason -->`` is skipped (e.g. it needs a cluster).
"""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"(<!-- not run:[^>]*-->\s*)?```python\n(.*?)```", re.S)


def _pages() -> list[pathlib.Path]:
    return sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


def _param(page: pathlib.Path):
    if "pyspark" in page.read_text():
        return pytest.param(page, marks=pytest.mark.spark, id=page.name)
    return pytest.param(page, id=page.name)


@pytest.mark.parametrize("page", [_param(p) for p in _pages()])
def test_page_examples_run(page, tmp_path, monkeypatch):
    if "pyspark" in page.read_text():
        pytest.importorskip("pyspark")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    blocks = [code for skip, code in BLOCK.findall(page.read_text()) if not skip]
    assert blocks, f"{page.name} has no runnable example"
    for code in blocks:
        exec(compile(code, str(page), "exec"), namespace)
