// @ts-check
/**
 * Encode worker bootstrap (worker_threads). A worker does not inherit the main thread's TypeScript loader (tsx
 * under `dnp`, vite-node under vitest), so this plain-JS entry registers tsx's loader for this thread and runs
 * the worker itself, encode-worker-main.ts, which shares the encoder code (rtp-encoder.ts, frame-encoder.ts)
 * with the main thread. Protocol: see encode-worker-main.ts.
 */
import { tsImport } from 'tsx/esm/api';

await tsImport('./encode-worker-main.ts', import.meta.url);
