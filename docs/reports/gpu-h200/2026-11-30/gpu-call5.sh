#!/bin/bash
# GPU call 5 (30 Nov 2026): the default preset (W: head geometry fitted to the landmarks, dense geometry, eye
# layer) trained on CUDA on the man's clip for 2 minutes, exported (fp32 RGB, then fp16 yuv420p), and the fp16
# graph run by the torch render device's interpreter on CUDA against onnxruntime on the CPU
set -u
export PYTHONUNBUFFERED=1
R=${OUT:?}
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/run.log >&2; }
el "train"
timeout 130 python3 -m train train --data data-local/man256-v2 --out /tmp/man --device cuda --max-minutes 1.5 --iterations 4000 --eval-every 1000 --no-progress >> $R/train.log 2>&1; el "rc=$?"
cp /tmp/man/avatar.json $R/avatar.json 2>/dev/null
el "export fp16 yuv420p"
timeout 60 python3 -m train export --checkpoint /tmp/man/checkpoint.pt --out /tmp/man16 --yuv --fp16 >> $R/train.log 2>&1; el "rc=$?"
el "torch interpreter on CUDA vs onnxruntime CPU"
timeout 60 python3 - >> $R/train.log 2>&1 <<'PY'
import numpy as np, torch, onnxruntime as ort
from train.onnx_torch import load
for p in ['/tmp/man/avatar.onnx', '/tmp/man16/avatar.onnx']:
    x = np.random.default_rng(3).normal(size=(8, 60)).astype(np.float32)
    ref = ort.InferenceSession(p, providers=['CPUExecutionProvider']).run(None, {'cond': x})[0]
    y = load(p, 'cuda').run(torch.from_numpy(x).cuda()).cpu().numpy()
    d = np.abs(y.astype(np.float32) - ref.astype(np.float32))
    print(p, y.dtype, 'max diff', float(d.max()), 'share > 1e-3 or > 1 level:', float((d > (1 if y.dtype == np.uint8 else 1e-3)).mean()))
PY
el "rc=$?"
el done
grep -E "train:|test PSNR|parity|wrote|max diff|Error|error" $R/train.log | tail -25
