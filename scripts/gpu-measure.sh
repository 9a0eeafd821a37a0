#!/bin/sh
# One command for a lent GPU machine (PyTorch 2.x + CUDA, no Node.js, no network), run from the repository root:
#   scripts/gpu-measure.sh [OUT_DIR]
# Measures, in this order, each step bounded in time (the whole under ~9 minutes by default) and writing as it goes:
#   1. machine.txt         nvidia-smi, torch/CUDA versions
#   2. torch-render.jsonl  the paper model's inference graph in PyTorch: 256/512/1024, batch 1/8/32, fp32/fp16/bf16,
#                          eager + CUDA graphs (+ torch.compile when GPU_MEASURE_COMPILE=1): the ceiling for a runtime
#   3. bundle/             the render bench of the GPU bundle (torch, WebGPU, CUDA EP, CPU), when a bundle
#                          folder is there (GPU_BUNDLE, default dist/gpu-bundle: `npm run bundle:gpu` beforehand)
#   3b. bundle/encode.*    the encode bench on the host's CPU cores (VP8 256² and 512², H.264 512²), when the
#                          encoder part is beside the bundle (GPU_BUNDLE-encoder: `npm run bundle:gpu -- --encoder`)
#   4. torch-train.jsonl   training it/s of the paper, cpu and warp presets at 256/512 on CUDA with AMP
#   5. train-*.log         `python3 -m train train --device cuda` for GPU_TRAIN_MINUTES (default 2) on a dataset
#                          (GPU_DATA=path of a `dnp prepare` folder, e.g. the man's clip), paper preset: held-out PSNR;
#                          skipped without GPU_DATA
# Environment: PYTHON (default python3), GPU_STEP_SECONDS (time limit per step, default 150).
set -u
cd "$(dirname "$0")/.."
OUT=${1:-gpu-results}
PY=${PYTHON:-python3}
STEP=${GPU_STEP_SECONDS:-150}
mkdir -p "$OUT"
log() { echo "gpu-measure: $*" >&2; }
step() { # step NAME LIMIT command...: runs with a time limit; a failure is logged and the next step runs
  name=$1; limit=$2; shift 2
  log "$name (at most ${limit}s) ..."
  timeout -k 10 "$limit" "$@"; rc=$?
  [ $rc -eq 0 ] || log "$name: exit $rc$( [ $rc -eq 124 ] && echo ' (time limit)')"
}

{ date -u; nvidia-smi 2>&1 | head -20; "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")'; nproc; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt" >&2

MODES=eager,graphs
[ "${GPU_MEASURE_COMPILE:-0}" = 1 ] && MODES=eager,graphs,compile
step torch-render "$STEP" "$PY" -m train.bench render --device cuda --presets paper --sizes 256,512,1024 --batches 1,8,32 \
  --dtypes fp32,fp16,bf16 --modes "$MODES" --seconds 1 > "$OUT/torch-render.jsonl"

BUNDLE=${GPU_BUNDLE:-dist/gpu-bundle}
if [ -x "$BUNDLE/run-bench.sh" ]; then
  step onnxruntime-node-bundle "$STEP" env OUT="$OUT/bundle" DNP_BUNDLE_WORK="${TMPDIR:-/tmp}/dnp-gpu-bundle-work" \
    "$BUNDLE/run-bench.sh" --runs 10 --cpu-max-size 256 --cpu-max-batch 8
else
  log "no GPU bundle at $BUNDLE (npm run bundle:gpu on a machine with Node.js, then bring the folder): onnxruntime-node not measured"
fi

if [ -x "$BUNDLE-encoder/run-encode.sh" ] && [ -x "${TMPDIR:-/tmp}/dnp-gpu-bundle-work/bin/node" ]; then
  for c in "vp8 256 32,64,128,192,256,320,384" "vp8 512 16,32,48,64,96,128" "h264 512 32,64,128,192,256"; do
    set -- $c
    step "encode-$1-$2" "$STEP" env OUT="$OUT/bundle/encode-$1-$2" DNP_BUNDLE_WORK="${TMPDIR:-/tmp}/dnp-gpu-bundle-work" \
      "$BUNDLE-encoder/run-encode.sh" --codec "$1" --size "$2" --streams "$3" --seconds 3
  done
else
  log "no encoder part at $BUNDLE-encoder (npm run bundle:gpu -- --encoder) or no unpacked bundle: encoding not measured"
fi

step torch-train "$STEP" "$PY" -m train.bench train --device cuda --presets paper,cpu,warp --sizes 256,512 --steps 30 > "$OUT/torch-train.jsonl"

if [ -n "${GPU_DATA:-}" ]; then
  MIN=${GPU_TRAIN_MINUTES:-2}
  limit=$(awk "BEGIN { print int($MIN * 60 + 120) }")
  rm -rf "$OUT/train-paper-cuda"
  step train-paper-cuda "$limit" "$PY" -m train train --data "$GPU_DATA" --out "$OUT/train-paper-cuda" --preset paper --device cuda \
    --max-minutes "$MIN" --eval-every 200 --no-progress --fp16 --output yuv420p 2> "$OUT/train-paper-cuda.log"
  tail -5 "$OUT/train-paper-cuda.log" >&2
else
  log "GPU_DATA not set: the training run on a real clip is skipped"
fi
log "done: $OUT"
ls -la "$OUT" >&2
