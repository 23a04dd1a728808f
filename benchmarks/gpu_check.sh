#!/usr/bin/env bash
# Face detection and the whole pipeline on CUDA against the CPU (benchmarks/gpu_check.py).
#
# On a machine with an NVIDIA GPU (nvidia-smi answers) this first makes sure
# onnxruntime has its CUDA provider: onnxruntime-gpu installs the same
# `onnxruntime` module as the CPU package, so the CPU package is swapped for
# it (pip's `gpu` extra), with the CUDA 12 / cuDNN 9 wheels when pip has them.
# Without a GPU, or with --cpu-only, only the CPU rows are timed.
#
#   benchmarks/gpu_check.sh [--cpu-only] [--no-install] [-- gpu_check.py options]
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3).
# Undo the swap with: $PYTHON -m pip uninstall -y onnxruntime-gpu && $PYTHON -m pip install onnxruntime
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

cpu_only=0
install=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpu-only) cpu_only=1; shift ;;
    --no-install) install=0; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) break ;;
  esac
done

has_cuda_provider() {
  "$PYTHON" - <<'PY'
import sys
import onnxruntime
sys.exit(0 if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else 1)
PY
}

devices=(cpu)
if [[ $cpu_only -eq 0 ]] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  if ! has_cuda_provider; then
    if [[ $install -eq 0 ]]; then
      echo "onnxruntime has no CUDA provider and --no-install was given: install onnxruntime-gpu first" >&2
      exit 2
    fi
    echo "installing onnxruntime-gpu in place of onnxruntime ($PYTHON) ..."
    "$PYTHON" -m pip uninstall -y -q onnxruntime onnxruntime-gpu || true
    # The [cuda,cudnn] extras bring the CUDA 12 and cuDNN 9 libraries as wheels (onnxruntime-gpu >= 1.21);
    # an older pip index has only the plain package, which uses the system's CUDA.
    "$PYTHON" -m pip install -q 'onnxruntime-gpu[cuda,cudnn]>=1.16' || "$PYTHON" -m pip install -q 'onnxruntime-gpu>=1.16'
  fi
  if has_cuda_provider; then
    devices=(cpu cuda)
  else
    echo "warning: onnxruntime still lists no CUDA provider; timing the CPU only" >&2
  fi
else
  echo "no NVIDIA GPU here (or --cpu-only): timing the CPU half only"
fi

exec "$PYTHON" benchmarks/gpu_check.py --devices "${devices[@]}" "$@"
