#!/usr/bin/env bash
# One entry point for a fresh machine:
#   bash run.sh demo [--out DIR]   set up .venv and run the built-in demo (no downloads)
#   bash run.sh test [pytest args] set up .venv, run ruff and the whole test suite
#   bash run.sh setup              only set up .venv
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # torch first, pinned, so pip never pulls a multi-GB CUDA build as a dependency.
  if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    "$VENV/bin/pip" install --quiet --quiet "torch==2.13.0"
  fi
  local stamp="$VENV/.unetkit-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/pip" install --quiet --quiet -e ".[dev,ray]"
    touch "$stamp"
  fi
}

cmd=${1:-demo}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/unetkit" demo "$@" ;;
  test)
    setup
    bash scripts/install_browser.sh  # Debian chromium for the web-page test (no-op when present)
    "$VENV/bin/ruff" check src tests benchmarks
    "$VENV/bin/ruff" format --check src tests benchmarks
    # two xdist workers on two cores: one BLAS/OpenMP thread each, or torch oversubscribes the CPU;
    # loadgroup: the tests of one xdist_group (the Ray cluster's) run on one worker
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} exec "$VENV/bin/python" -m pytest -n 2 --dist loadgroup --timeout 900 -q "$@"
    ;;
  *) echo "usage: bash run.sh demo|test|setup" >&2; exit 2 ;;
esac
