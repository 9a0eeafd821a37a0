#!/bin/sh
# dnp GPU bundle: unpacks node + onnxruntime-node + the render bench + the avatars into a work folder and runs the
# render bench there (every avatar, batch 1/8/32, every backend that starts: torch, webgpu, cuda, cpu).
#   ./run-bench.sh [bench options]          e.g. ./run-bench.sh --sizes 256 --batches 1 --devices cpu --runs 3
# Environment: DNP_BUNDLE_WORK (default: ./work beside this script), OUT (default: the work folder) for
# results.json and results.md, DNP_PYTHON (the python3 with PyTorch for the torch device, default python3).
# Bench options: ./run-bench.sh --help
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${DNP_BUNDLE_WORK:-$HERE/work}
OUT=${OUT:-$WORK}
mkdir -p "$WORK" "$OUT"
stamp=$(cksum "$HERE/runtime.tar.xz" "$HERE/app.tar.xz" | cksum | cut -d' ' -f1)
if [ ! -f "$WORK/.unpacked-$stamp" ]; then
  echo "run-bench: unpacking into $WORK" >&2
  rm -rf "$WORK/bin" "$WORK/lib" "$WORK/node_modules" "$WORK/app" "$WORK"/.unpacked-*
  xz -dc "$HERE/runtime.tar.xz" | tar -C "$WORK" -xf -
  mkdir -p "$WORK/app"
  xz -dc "$HERE/app.tar.xz" | tar -C "$WORK/app" -xf -
  # the bench resolves onnxruntime-node from app/node_modules
  ln -s ../node_modules "$WORK/app/node_modules"
  touch "$WORK/.unpacked-$stamp"
fi
# Vulkan and GL dispatch loaders carried in the bundle (the NVIDIA driver's ICD is the host's own)
if [ -d "$WORK/lib" ]; then
  LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi
# the driver's files where a container mounts them outside the loaders' search paths
nv=/usr/local/nvidia/share
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nv/vulkan/icd.d/nvidia_icd.json" ]; then export VK_DRIVER_FILES="$nv/vulkan/icd.d/nvidia_icd.json"; fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$nv/glvnd/egl_vendor.d/10_nvidia.json" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$nv/glvnd/egl_vendor.d/10_nvidia.json"; fi
# the torch device: the host's python3 with PyTorch runs app/train/render_process.py
export DNP_PYTHON="${DNP_PYTHON:-python3}" DNP_TRAIN_ROOT="$WORK/app"
"$WORK/bin/node" --version >/dev/null
cd "$WORK/app"
"$WORK/bin/node" bench.mjs --avatars "$WORK/app/avatars" --out "$OUT/results.json" "$@" > "$OUT/results.md"
cat "$OUT/results.md"
echo "run-bench: wrote $OUT/results.json and $OUT/results.md" >&2
