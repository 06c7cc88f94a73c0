#!/usr/bin/env bash
# Sets up the environment, then runs the main job: a real estimation on a generated panel.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev bash scripts/setup.sh
.venv/bin/python -m moderndid "$@"
