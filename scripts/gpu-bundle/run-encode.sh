#!/bin/sh
# dnp GPU bundle, encoder part (`npm run bundle:gpu -- --encoder`): how many sessions this host's CPU cores can
# encode (`dnp bench encode`) while the GPU renders. Needs the render bundle unpacked first (its run-bench.sh, any
# options, e.g. `../gpu-bundle/run-bench.sh --help`): it uses that work folder's node, onnxruntime-node (to render
# the pictures it encodes) and avatars.
#   ./run-encode.sh [dnp bench encode options]     e.g. ./run-encode.sh --size 512 --streams 16,32,64
# Environment: DNP_BUNDLE_WORK (the render bundle's work folder; default ../gpu-bundle/work beside this folder),
# OUT (default: the work folder) for encode.json and encode.md. Default avatar: the work folder's avatars/default.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${DNP_BUNDLE_WORK:-$(dirname "$HERE")/gpu-bundle/work}
OUT=${OUT:-$WORK}
if [ ! -x "$WORK/bin/node" ] || [ ! -d "$WORK/app" ]; then
  echo "run-encode: no unpacked render bundle in $WORK (run the render bundle's run-bench.sh first, or set DNP_BUNDLE_WORK)" >&2
  exit 2
fi
mkdir -p "$OUT"
stamp=$(cksum "$HERE/encoder.tar.xz" | cut -d' ' -f1)
if [ ! -f "$WORK/.encoder-$stamp" ]; then
  echo "run-encode: unpacking the encoder into $WORK" >&2
  rm -rf "$WORK/node_modules/node-av" "$WORK/node_modules/@seydx" "$WORK"/.encoder-*
  xz -dc "$HERE/encoder.tar.xz" | tar -C "$WORK" -xf -
  # encode-bench.mjs and encode-worker.mjs go beside the render bundle's bench (its render worker, its avatars)
  touch "$WORK/.encoder-$stamp"
fi
case " $* " in
  *" --avatar "*|*" --preset "*) set -- "$@" ;;
  *) [ -d "$WORK/app/avatars/default" ] && set -- --avatar "$WORK/app/avatars/default" "$@" ;;
esac
cd "$WORK/app"
"$WORK/bin/node" encode-bench.mjs --out "$OUT/encode.json" "$@" > "$OUT/encode.md"
cat "$OUT/encode.md"
echo "run-encode: wrote $OUT/encode.json and $OUT/encode.md" >&2
