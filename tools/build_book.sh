#!/usr/bin/env bash
# Build the executed course with warnings as errors; notebooks re-run only when they change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The chapters multiply small matrices: one BLAS thread per process is several times faster here.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
start=$(date +%s)
.venv/bin/jupyter-book build . --warningiserror --nitpick --keep-going --quiet "$@"
echo "The course is built ($(( $(date +%s) - start )) s): open file://$root/_build/html/index.html"
echo "or serve it with: make serve   (http://127.0.0.1:8000/)"
