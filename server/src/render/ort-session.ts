/**
 * Render devices: onnxruntime-node execution providers (cpu, webgpu, cuda), and `torch`, the avatar's graph run
 * by a PyTorch process on a GPU (train/render_process.py, CUDA graphs; for PyTorch GPU hosts). The session itself
 * is created in the render worker (render-worker.mjs), which falls back to the CPU when the requested device
 * cannot be used (no GPU adapter for WebGPU, CUDA provider not installed, no PyTorch or no CUDA device …) and
 * reports why.
 */

export const RENDER_DEVICES = ['cpu', 'webgpu', 'cuda', 'torch'] as const;
export type RenderDevice = (typeof RENDER_DEVICES)[number];
