// Entry point of the GPU bundle's encode bench (bundled by scripts/bundle-gpu.js --encoder); see
// server/src/bench/encode-bench.ts. `dnp bench encode`'s options, and --out FILE for the results as JSON.
import { gpuBundleEncodeMain } from '../server/src/bench/gpu-bundle-encode.js';

process.exitCode = await gpuBundleEncodeMain(process.argv.slice(2));
