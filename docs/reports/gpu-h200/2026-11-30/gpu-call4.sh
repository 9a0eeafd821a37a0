#!/bin/bash
# GPU call 4 (30 Nov 2026): the default avatar's fp16 graph after the position fix; warp preset with CUDA graphs
set -u
export PYTHONUNBUFFERED=1
R=${OUT:?}
W=$PWD/dist/work
B=dist/gpu-bundle/run-bench.sh
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/run.log >&2; }
DNP_BUNDLE_WORK=$W OUT=/tmp/unpack $B --help > /dev/null 2>&1; el "unpacked rc=$?"
mkdir -p /tmp/av && for a in default-fp16-yuv420p default-yuv420p; do ln -sfn $W/app/avatars/$a /tmp/av/$a; done
el "torch + webgpu, default fp16/fp32 yuv420p"
mkdir -p $R/b
(export LD_LIBRARY_PATH=$W/lib DNP_PYTHON=python3 DNP_TRAIN_ROOT=$W/app VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
 cd $W/app && timeout 150 $W/bin/node bench.mjs --avatars /tmp/av --out $R/b/results.json --devices torch,webgpu --batches 1,8,32,64 --runs 20 > $R/b/results.md 2>> $R/run.log); el "rc=$?"
el "warp render bench"
timeout 60 python3 -m train.bench render --device cuda --presets warp --sizes 256,512 --batches 1,32,64 --dtypes fp32,fp16,bf16 --modes graphs --seconds 0.3 > $R/warp-render.jsonl 2>>$R/run.log; el "rc=$?"
el done
cat $R/b/results.md | cut -c1-200; grep -E "usable|failed" $R/run.log | tail
python3 -c "
import json
for l in open('$R/warp-render.jsonl'):
    if l.startswith('{'):
        d=json.loads(l); print({k:d.get(k) for k in ['preset','size','batch','dtype','mode','frame_ms_median','frames_per_s','error'] if k in d})
"
