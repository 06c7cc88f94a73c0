#!/usr/bin/env bash
# Creates .venv (if missing) and installs moderndid with the extras named in $EXTRAS.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-dev}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
# The Scala half (JVM reductions of the Spark engine), compiled with the Scala compiler that
# ships inside pyspark: no sbt, no network. Skipped when pyspark is not installed.
.venv/bin/python scripts/build_jar.py
