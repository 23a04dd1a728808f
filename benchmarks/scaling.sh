#!/usr/bin/env bash
# Throughput against the number of Ray workers (1, 2, 4, 8 where the CPUs allow), the serial parts of
# the driver beside it, and on a machine with an NVIDIA GPU benchmarks/gpu_check.sh: one table, a few
# minutes, nothing but the repository (benchmarks/scaling.py says how the shoot is made).
#
#   benchmarks/scaling.sh [--images 32] [--workers 1 2 4 8]
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" benchmarks/scaling.py "$@"
