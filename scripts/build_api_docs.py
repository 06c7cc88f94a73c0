"""Build the API reference (HTML, from the docstrings) into docs/api/ with pdoc.

Run: ``.venv/bin/python scripts/build_api_docs.py [output-folder]``. The test suite builds
it too (tests/test_api_docs.py) and fails on any warning, so it cannot rot.
"""

from __future__ import annotations

import pathlib
import sys

import pdoc
import pdoc.render

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = ["moderndid", "moderndid.spark", "moderndid.plots"]  # pdoc adds their submodules


def build(output: pathlib.Path) -> None:
    """Render the API reference of the public modules to ``output``."""
    pdoc.render.configure(docformat="numpy", show_source=False)
    pdoc.pdoc(*MODULES, output_directory=output)


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "api"
    build(target)
    print(f"API reference written to {target}")
