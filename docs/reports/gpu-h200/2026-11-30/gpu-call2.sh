#!/bin/bash
# GPU call 2 (30 Nov 2026, on the machine still warm from call 1): the encode bench on the host's CPU cores
set -u
R=${OUT:?}
W=$PWD/dist/work
E=dist/gpu-bundle-encoder/run-encode.sh
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/run.log >&2; }
[ -x $W/bin/node ] || { el "no unpacked render bundle in $W: the machine was not warm"; exit 3; }
nproc; uptime
el "vp8 256"
DNP_BUNDLE_WORK=$W OUT=$R/v256 timeout 80 $E --size 256 --streams 32,64,128,192,256,320,384,448 --seconds 3 >> $R/run.log 2>&1; el "rc=$?"
el "vp8 512"
DNP_BUNDLE_WORK=$W OUT=$R/v512 timeout 70 $E --size 512 --streams 16,32,48,64,96,128,160 --seconds 3 >> $R/run.log 2>&1; el "rc=$?"
el "h264 512"
DNP_BUNDLE_WORK=$W OUT=$R/h512 timeout 60 $E --size 512 --codec h264 --streams 16,32,64,96,128,160 --seconds 3 >> $R/run.log 2>&1; el "rc=$?"
el done
grep -E "content|encoder:|^\| [0-9]|held" $R/run.log | tail -40
