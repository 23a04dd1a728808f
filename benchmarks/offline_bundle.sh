#!/usr/bin/env bash
# Packs what benchmarks/scaling.sh and gpu_check.sh need on an offline machine whose Python lacks
# the project's packages (the GPU machine of RESULTS.md: Python 3.12, numpy, OpenCV, pyarrow,
# scikit-image and onnxruntime (CPU) there; Ray, rawpy, pydantic and the rest not; no network).
#
#   benchmarks/offline_bundle.sh [DEST]          (default benchmarks/.offline, which git ignores)
#
# DEST gets: wheels/ (the missing packages for CPython 3.12 manylinux x86-64), ray.tar.xz (Ray with
# its Java jars, dashboard client and ML libraries left out and its binaries stripped: 24 MB instead
# of a 79 MB wheel), ort/part0..3 (onnxruntime-gpu, 1.31 for CUDA 13 when written, stripped and split in 51 MB parts,
# for a transfer limited to 64 MB a copy), models/ and data/ (the detector weights and the photos
# gpu_check.py reads, from POSTPROD_MODEL_DIR and POSTPROD_TESTDATA). benchmarks/offline_run.sh
# installs them there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$(realpath -m "${1:-$ROOT/benchmarks/.offline}")"
DATA="${POSTPROD_TESTDATA:-$ROOT/../shared/data}"
MODELS="${POSTPROD_MODEL_DIR:-$DATA/models}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DEST/wheels" "$DEST/ort" "$DEST/models" "$DEST/data/faces"

download() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$1" "${@:2}"
}
# The project's packages the machine lacks, and theirs (Ray's without its dashboard extras).
download "$DEST/wheels" rawpy pydantic pydantic_core annotated-types typing-inspection anyascii pyexiv2 \
  pillow_heif pillow-jxl-plugin Flask blinker itsdangerous jsonschema jsonschema-specifications referencing rpds-py

download "$WORK" ray onnxruntime-gpu
mkdir -p "$WORK/ray" "$WORK/ort"
(cd "$WORK/ray" && unzip -q "$WORK"/ray-*.whl \
  && rm -rf ray/jars ray/dashboard/client/build ray/rllib ray/tune ray/train ray/serve ray/llm \
  && find ray -name '*.so' -size +1M -exec strip --strip-unneeded {} + \
  && strip --strip-unneeded ray/core/src/ray/raylet/raylet ray/core/src/ray/gcs/gcs_server \
  && tar -cf - ray ray-*.dist-info | xz -T0 -6 > "$DEST/ray.tar.xz")
(cd "$WORK/ort" && unzip -q "$WORK"/onnxruntime_gpu-*.whl \
  && rm -rf onnxruntime/transformers onnxruntime/tools onnxruntime/quantization \
            onnxruntime/capi/libonnxruntime_providers_tensorrt.so \
  && strip --strip-unneeded onnxruntime/capi/*.so* \
  && tar -cf - onnxruntime onnxruntime_gpu-*.dist-info | xz -T0 -6 | split -b 51000000 -d -a 1 - "$DEST/ort/part")

parts=$(ls "$DEST"/ort/part* | wc -l)
[[ $parts -eq 4 ]] || echo "note: onnxruntime-gpu made $parts parts: run offline_run.sh with ORT_PARTS=$parts" >&2

cp "$MODELS"/*.onnx "$DEST/models/"
cp -r "$DATA/faces/pascal_voc" "$DEST/data/faces/"
cp -r "$DATA/exposure" "$DEST/data/"
chmod -R u+w "$DEST"
du -sh "$DEST"/*
