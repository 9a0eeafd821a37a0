// Entry point of the GPU bundle's bench (bundled by scripts/bundle-gpu.js); see server/src/bench/gpu-bundle-bench.ts.
import { gpuBundleMain } from '../server/src/bench/gpu-bundle-bench.js';

process.exitCode = await gpuBundleMain(process.argv.slice(2));
