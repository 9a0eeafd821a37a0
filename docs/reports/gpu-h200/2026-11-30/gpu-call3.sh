#!/bin/bash
# GPU call 3 (30 Nov 2026): after the fixes (f1ab309): the torch device on every bundled avatar, bf16 autocast,
# the CUDA training tests (default W and F), the warp preset's render and training benches
set -u
export PYTHONUNBUFFERED=1
R=${OUT:?}
W=$PWD/dist/work
B=dist/gpu-bundle/run-bench.sh
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/run.log >&2; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv; nproc; uptime; } > $R/machine.txt 2>&1
el "torch 256,512"
DNP_BUNDLE_WORK=$W OUT=$R/torch timeout 220 $B --devices torch --sizes 256,512 --batches 1,8,32,64 --runs 20 >> $R/run.log 2>&1; el "rc=$?"
el "bf16 autocast 256"
DNP_TORCH_AUTOCAST=bf16 DNP_BUNDLE_WORK=$W OUT=$R/bf16 timeout 70 $B --devices torch --sizes 256 --batches 1,8,32,64 --runs 20 >> $R/run.log 2>&1; el "rc=$?"
rm -f $R/bf16/results.md
el "pytest cuda"
timeout 100 python3 -m pytest -q -p no:cacheprovider train/tests/test_gpu_paths.py -k "cuda_train or one_device" >> $R/run.log 2>&1; el "rc=$?"
el "warp render bench"
timeout 60 python3 -m train.bench render --device cuda --presets warp --sizes 256,512 --batches 1,32 --dtypes fp32,fp16,bf16 --modes graphs --seconds 0.3 > $R/warp-render.jsonl 2>>$R/run.log; el "rc=$?"
el "warp train bench"
timeout 60 python3 -m train.bench train --device cuda --presets warp --sizes 256 --steps 30 > $R/warp-train.jsonl 2>>$R/run.log; el "rc=$?"
el done
grep -E "avatar:|device:|^\| [0-9]|usable|passed|failed|CUDA graph|eagerly" $R/run.log | sort | uniq -c | sort -rn | head -5
grep -E "avatar:|device:|^\| [0-9]|usable|passed|failed" $R/run.log | cut -c1-200 | tail -60
python3 -c "
import json
for f in ['$R/warp-render.jsonl','$R/warp-train.jsonl']:
    for l in open(f):
        if l.startswith('{'):
            d=json.loads(l); print({k:d.get(k) for k in ['preset','size','batch','dtype','mode','frame_ms_median','frames_per_s','it_per_s','error'] if k in d})
"
