/**
 * Creating an onnxruntime-node InferenceSession on the requested device, falling back to the CPU with a
 * clear log line when the device cannot be used (no GPU adapter for WebGPU, CUDA provider not installed …).
 */
import * as ort from 'onnxruntime-node';
import type { Logger } from '../log.js';

export const RENDER_DEVICES = ['cpu', 'webgpu', 'cuda'] as const;
export type RenderDevice = (typeof RENDER_DEVICES)[number];

export interface OrtSessionOptions {
  device: RenderDevice;
  /** ORT intra-op threads; 0 = ORT's default (one per core). */
  threads: number;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The device the session actually runs on. */
  device: RenderDevice;
  /** Why the requested device was not used, when it was not. */
  fallbackReason?: string;
}

function sessionOptions(providers: string[], threads: number): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: providers,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
  };
  if (threads > 0) o.intraOpNumThreads = threads;
  return o;
}

export async function createOrtSession(modelPath: string, opts: OrtSessionOptions, log: Logger): Promise<CreatedSession> {
  if (opts.device !== 'cpu') {
    try {
      const session = await ort.InferenceSession.create(modelPath, sessionOptions([opts.device], opts.threads));
      log.info({ model: modelPath, device: opts.device }, 'renderer running on the requested device');
      return { session, device: opts.device };
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err);
      log.warn(
        { model: modelPath, requested: opts.device, reason },
        `renderer: device "${opts.device}" is not usable here (${reason}); falling back to CPU`,
      );
      const session = await ort.InferenceSession.create(modelPath, sessionOptions(['cpu'], opts.threads));
      return { session, device: 'cpu', fallbackReason: reason };
    }
  }
  const session = await ort.InferenceSession.create(modelPath, sessionOptions(['cpu'], opts.threads));
  return { session, device: 'cpu' };
}
