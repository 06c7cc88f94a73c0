#!/usr/bin/env bash
# Sets up the environment, then runs lint, the type checker and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev bash scripts/setup.sh
.venv/bin/ruff check python tests benchmarks scripts
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
