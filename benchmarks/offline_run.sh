#!/usr/bin/env bash
# On the offline machine, from the repository's root with benchmarks/.offline beside it (see
# benchmarks/offline_bundle.sh). The packages go to SITE (default /tmp/site), onnxruntime-gpu to
# /tmp/ortsite; each step may run in its own call, as long as /tmp stays.
#
#   benchmarks/offline_run.sh install            wheels and Ray into SITE
#   benchmarks/offline_run.sh stage              copy the onnxruntime-gpu parts present to /tmp/ortp
#   benchmarks/offline_run.sh scaling [ARGS]     benchmarks/scaling.sh (and its GPU check, on CUDA once staged)
#   benchmarks/offline_run.sh gpu [ARGS]         onnxruntime-gpu from the four parts, then gpu_check.sh
#
# The CUDA 13 and cuDNN 9 libraries are taken from the nvidia-* wheels of the machine's own Python
# (NVIDIA, below; onnxruntime-gpu 1.31 is built for CUDA 13).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
B=benchmarks/.offline
PY="${PYTHON:-python3}"
SITE="${SITE:-/tmp/site}"
NVIDIA="${NVIDIA:-$("$PY" -c 'import site; print(site.getsitepackages()[0])')/nvidia}"
export POSTPROD_MODEL_DIR="$ROOT/$B/models" POSTPROD_TESTDATA="$ROOT/$B/data" PYTHONUNBUFFERED=1 PYTHON="$PY"
# onnxruntime-gpu, once its parts (ORT_PARTS, default 4) are staged: assembled in /tmp/ortsite, put before SITE,
# with the CUDA libraries on the loader's path.
use_ort() {
  [[ -d /tmp/ortsite/onnxruntime ]] || { [[ $(ls /tmp/ortp/part* 2>/dev/null | wc -l) -eq ${ORT_PARTS:-4} ]] \
    && mkdir -p /tmp/ortsite && cat /tmp/ortp/part* | xz -d | tar -x -C /tmp/ortsite; } || return 1
  export LD_LIBRARY_PATH="$NVIDIA/cu13/lib:$NVIDIA/cudnn/lib:${LD_LIBRARY_PATH:-}"
  export PYTHONPATH="/tmp/ortsite:$SITE"
}
case "${1:-}" in
  install)
    mkdir -p "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      $B/wheels/*.whl
    tar -xJf $B/ray.tar.xz -C "$SITE"
    PYTHONPATH="$SITE" "$PY" -c "import ray, rawpy, pydantic; print('ray', ray.__version__, 'rawpy', rawpy.__version__)"
    ;;
  stage)
    mkdir -p /tmp/ortp && cp $B/ort/part* /tmp/ortp/ && ls /tmp/ortp ;;
  scaling)  # with onnxruntime-gpu when its parts are staged, so that the GPU check at its end runs on CUDA
    shift; export PYTHONPATH="$SITE"; use_ort || echo "onnxruntime-gpu not staged: the GPU check will say so"
    bash benchmarks/scaling.sh --corpus-dir /tmp/scaling-corpus "$@" ;;
  gpu)
    shift; use_ort || { echo "stage the four onnxruntime-gpu parts first" >&2; exit 5; }
    bash benchmarks/gpu_check.sh --no-install -- --corpus-dir /tmp/gpu-corpus "$@" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
