// @ts-check
/**
 * Render worker (worker_threads): owns one onnxruntime-node InferenceSession for one avatar.
 *
 * Why a worker: onnxruntime-node's `session.run()` keeps the calling thread busy for the whole model run, so
 * on the main thread it would stall every socket (driving frames, RTP, DTLS, signaling) for tens of
 * milliseconds per frame. Here the model runs on its own thread and the main thread keeps doing I/O and
 * encoding in parallel.
 *
 * Plain JavaScript on purpose: a worker does not inherit the TypeScript loader of the main thread (tsx, vitest).
 * The messages are typed and checked on the main side (renderer.ts).
 *
 * Buffers are allocated once and shared with the main thread (SharedArrayBuffer): the main thread writes the
 * normalised input vectors into `input`, the worker copies each result's bytes into `output` (float32 RGB, or
 * uint8 for a model with a yuv420p output; onnxruntime-node rejects tensors over shared memory, so the worker
 * keeps its own input copy). One run at a time.
 *
 * Device `torch`: the model runs in a PyTorch process (torch-session.mjs) instead of an onnxruntime session; the
 * messages and buffers are the same.
 *
 * workerData: { modelPath, device: 'cpu' | 'webgpu' | 'cuda' | 'torch', threads, input: SharedArrayBuffer, output: SharedArrayBuffer }
 * → { type: 'ready', device, fallbackReason, inputs, outputs } | { type: 'error', message }
 * ← { type: 'output', output: SharedArrayBuffer }   a larger output buffer (for a larger batch)
 * ← { type: 'run', id, batch, size, inputName, outputName } (input = the first batch × size floats of `input`)
 * → { type: 'result', id, ms, dims, outType, length } (result = the first `length` values of `outType` in `output`) | { type: 'run-error', id, message }
 * → { type: 'log', message } (after 'ready', device torch: a line the PyTorch process wrote to stderr)
 * ← { type: 'close' } → the session is released and the worker exits.
 * ← { type: 'test-slow', msPerFrame, exact } (tests only) from now on every run takes at least msPerFrame × batch ms
 *                                              (exact: and reports exactly that as its time)
 * ← { type: 'test-fault', mode: 'silent' | 'spin' | 'throw' | 'crash' } (tests only) the next run never answers ('silent'),
 *   blocks this thread forever ('spin'), as a stuck GPU driver or a pathological model would (the main side must
 *   abandon it after its run timeout), fails ('throw', a run-error), or ends the thread ('crash').
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { TorchSession } from './torch-session.mjs';

const port = parentPort;
if (!port) throw new Error('render-worker.mjs must run in a worker thread');

/** @param {unknown} err */
function firstLine(err) {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

/** @param {string[]} providers */
function sessionOptions(providers) {
  /** @type {import('onnxruntime-node').InferenceSession.SessionOptions} */
  const o = { executionProviders: providers, graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1 };
  if (workerData.threads > 0) o.intraOpNumThreads = workerData.threads;
  return o;
}

/** @param {readonly (import('onnxruntime-node').InferenceSession.ValueMetadata | import('./torch-session.mjs').Meta)[]} list */
function plainMetadata(list) {
  return list.map((m) => (m.isTensor ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] } : { name: m.name, isTensor: false }));
}

// ORT prints provider-loading failures itself (e.g. the missing CUDA provider) before throwing; the server
// logs the thrown reason through its own logger instead.
ort.env.logLevel = 'fatal';

/** @type {Float32Array} */
const sharedInput = new Float32Array(workerData.input);
const localInput = new Float32Array(sharedInput.length);
/** The shared output buffer as bytes (results of either type are copied byte for byte). */
let sharedOutput = new Uint8Array(workerData.output);

/** @type {import('onnxruntime-node').InferenceSession | TorchSession | null} */
let session = null;
/** @type {'silent' | 'spin' | 'throw' | 'crash' | null} */
let faultNext = null;
/** Tests only: every model run takes at least this many ms per frame (it waits out the rest; 0 = off). */
let testMinMsPerFrame = 0;
/** Tests only: with testMinMsPerFrame, report exactly msPerFrame × batch (deterministic, whatever the machine's speed). */
let testExact = false;
let device = 'cpu';
/** @type {string | null} */
let fallbackReason = null;
try {
  if (workerData.device === 'torch') {
    try {
      session = await TorchSession.create(workerData.modelPath);
      device = 'torch';
    } catch (err) {
      fallbackReason = firstLine(err);
    }
  } else if (workerData.device !== 'cpu') {
    try {
      // ORT's own error line for a missing provider would bypass our log; the reason is reported below.
      session = await ort.InferenceSession.create(workerData.modelPath, { ...sessionOptions([workerData.device]), logSeverityLevel: 4 });
      device = workerData.device;
    } catch (err) {
      fallbackReason = firstLine(err);
    }
  }
  if (!session) session = await ort.InferenceSession.create(workerData.modelPath, sessionOptions(['cpu']));
  port.postMessage({ type: 'ready', device, fallbackReason, inputs: plainMetadata(session.inputMetadata), outputs: plainMetadata(session.outputMetadata) });
  if (session instanceof TorchSession) session.onLog = (line) => port.postMessage({ type: 'log', message: line.slice(0, 2000) });
} catch (err) {
  port.postMessage({ type: 'error', message: firstLine(err) });
  port.close();
}

port.on('message', async (/** @type {{ type: string, id?: number, batch?: number, size?: number, inputName?: string, outputName?: string, output?: SharedArrayBuffer }} */ msg) => {
  if (msg.type === 'close') {
    const s = session;
    session = null;
    if (s) await s.release();
    port.close();
    return;
  }
  if (msg.type === 'output' && msg.output instanceof SharedArrayBuffer) {
    sharedOutput = new Uint8Array(msg.output);
    return;
  }
  if (msg.type === 'test-fault') {
    const mode = /** @type {{ mode?: unknown }} */ (msg).mode;
    faultNext = mode === 'spin' || mode === 'throw' || mode === 'crash' ? mode : 'silent';
    return;
  }
  if (msg.type === 'test-slow') {
    const ms = /** @type {{ msPerFrame?: unknown }} */ (msg).msPerFrame;
    testMinMsPerFrame = typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : 0;
    testExact = /** @type {{ exact?: unknown }} */ (msg).exact === true;
    return;
  }
  if (msg.type !== 'run' || !session) return;
  const fault = faultNext;
  faultNext = null;
  if (fault === 'silent') return;
  if (fault === 'spin') for (;;);
  if (fault === 'crash') process.exit(3); // the thread dies, as after a native crash in a provider
  const { id, batch, size, inputName, outputName } = msg;
  try {
    if (fault === 'throw') throw new Error('injected model failure (test-fault)');
    if (typeof batch !== 'number' || typeof size !== 'number' || batch * size > localInput.length || typeof inputName !== 'string' || typeof outputName !== 'string') {
      throw new Error('malformed run request');
    }
    const n = batch * size;
    localInput.set(sharedInput.subarray(0, n));
    const t0 = performance.now();
    const res = await session.run({ [inputName]: new ort.Tensor('float32', localInput.subarray(0, n), [batch, size]) });
    const slowUntil = t0 + testMinMsPerFrame * batch;
    // a timer may fire up to a millisecond before performance.now() reaches its delay: wait again until it has
    while (performance.now() < slowUntil) await new Promise((resolve) => setTimeout(resolve, Math.ceil(slowUntil - performance.now())));
    const ms = testExact && testMinMsPerFrame > 0 ? testMinMsPerFrame * batch : performance.now() - t0;
    const out = res[outputName];
    if (!out) throw new Error(`model has no output "${outputName}"`);
    const data = /** @type {Float32Array | Uint8Array} */ (out.data);
    if ((out.type !== 'float32' && out.type !== 'uint8') || data.byteLength > sharedOutput.length) {
      throw new Error(`model output "${outputName}" is ${out.type} [${out.dims.join(', ')}], not float32 or uint8 of the expected size`);
    }
    sharedOutput.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    port.postMessage({ type: 'result', id, ms, dims: [...out.dims], outType: out.type, length: data.length });
  } catch (err) {
    port.postMessage({ type: 'run-error', id, message: firstLine(err) });
  }
});
