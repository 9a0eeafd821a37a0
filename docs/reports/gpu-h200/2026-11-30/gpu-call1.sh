#!/bin/bash
# GPU call 1 (30 Nov 2026): the render bundle's torch device (CUDA graphs) and WebGPU; the CUDA training test; warp autocast
set -u
export PYTHONUNBUFFERED=1
R=${OUT:?}
W=$PWD/dist/work
B=dist/gpu-bundle/run-bench.sh
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/run.log >&2; }
{ date -u; nvidia-smi; python3 -c 'import torch,onnx;print("torch",torch.__version__,"cuda",torch.version.cuda,torch.cuda.get_device_name(0),"onnx",onnx.__version__)'; nproc; grep -m1 "model name" /proc/cpuinfo; grep -o -m1 avx512f /proc/cpuinfo; free -g | head -2; which python3; uname -r; } > $R/machine.txt 2>&1
el machine; head -40 $R/machine.txt
el "torch 256,512"
DNP_BUNDLE_WORK=$W OUT=$R/torch timeout 200 $B --devices torch --sizes 256,512 --batches 1,8,32,64 --runs 20 >> $R/run.log 2>&1; el "rc=$?"
el "torch 1024"
DNP_BUNDLE_WORK=$W OUT=$R/t1024 timeout 45 $B --devices torch --sizes 1024 --batches 1,8,16 --runs 10 >> $R/run.log 2>&1; el "rc=$?"
el "bf16 autocast 256"
DNP_TORCH_AUTOCAST=bf16 DNP_BUNDLE_WORK=$W OUT=$R/bf16 timeout 50 $B --devices torch --sizes 256 --batches 1,8,32,64 --runs 20 >> $R/run.log 2>&1; el "rc=$?"
el "webgpu 256"
DNP_BUNDLE_WORK=$W OUT=$R/webgpu timeout 60 $B --devices webgpu --sizes 256 --batches 1,8,32,64 --runs 20 >> $R/run.log 2>&1; el "rc=$?"
rm -f $R/t1024/results.md $R/bf16/results.md $R/webgpu/results.md
el "pytest cuda"
timeout 80 python3 -m pytest -q -p no:cacheprovider train/tests/test_gpu_paths.py -k cuda_train >> $R/run.log 2>&1; el "rc=$?"
el "warp bench"
timeout 50 python3 -m train.bench render --device cuda --presets warp --sizes 256,512 --batches 1,32 --dtypes fp32,fp16,bf16 --modes graphs --seconds 0.3 > $R/warp-render.jsonl 2>>$R/run.log; el "rc=$?"
el done
grep -E "avatar:|device:|^\| [0-9]|usable|error" $R/run.log | cut -c1-220 | tail -80
