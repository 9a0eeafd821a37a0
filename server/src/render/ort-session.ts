/**
 * Render devices (onnxruntime-node execution providers). The session itself is created in the render
 * worker (render-worker.mjs), which falls back to the CPU when the requested device cannot be used (no GPU
 * adapter for WebGPU, CUDA provider not installed …) and reports why.
 */

export const RENDER_DEVICES = ['cpu', 'webgpu', 'cuda'] as const;
export type RenderDevice = (typeof RENDER_DEVICES)[number];
