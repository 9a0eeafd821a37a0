// @ts-check
/**
 * The `torch` render device: a PyTorch process (`python3 -m train.render_process`, train/render_process.py) that
 * runs the avatar's own ONNX graph with PyTorch on a GPU (CUDA graphs), driven over its stdin / stdout. Shaped
 * like the part of onnxruntime's InferenceSession the render worker uses (inputMetadata, outputMetadata, run,
 * release), so the worker treats both alike. Plain JavaScript: it runs inside the render worker.
 *
 * Environment: DNP_PYTHON (the interpreter; default /usr/bin/python3 where it exists, else python3),
 * DNP_TORCH_DEVICE (torch device, default cuda), DNP_TORCH_AUTOCAST (off | fp16 | bf16, default off),
 * DNP_TORCH_GRAPHS (0 = no CUDA graphs).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MSG_JSON = 1;
const MSG_RESULT = 2;
const OP_RUN = 1;
const OP_CLOSE = 2;
const START_TIMEOUT_MS = 120_000;
/** The folder that holds the `train` package (the repository root; in the GPU bundle, the app folder). */
const PACKAGE_ROOT = process.env.DNP_TRAIN_ROOT ? resolve(process.env.DNP_TRAIN_ROOT) : fileURLToPath(new URL('../../../', import.meta.url));

export function torchPython() {
  return process.env.DNP_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** @typedef {{ name: string, isTensor: true, type: string, shape: Array<number | string> }} Meta */
/** @typedef {{ kind: number, payload: Buffer }} Message */

export class TorchSession {
  /** @type {Meta[]} */ inputMetadata = [];
  /** @type {Meta[]} */ outputMetadata = [];
  /** @type {string} */ torchDevice = '';
  /** @type {import('node:child_process').ChildProcessWithoutNullStreams} */ proc;
  /** @type {Buffer[]} */ chunks = [];
  buffered = 0;
  /** Bytes of the message being read (-1: its header is next) and its kind. */
  need = -1;
  kind = 0;
  /** @type {Message[]} */ messages = [];
  /** @type {Array<(m: Message | null) => void>} */ waiters = [];
  /** @type {string[]} */ stderrTail = [];
  exited = false;
  released = false;
  /** Called with each line the process writes to stderr (e.g. a batch size that runs without a CUDA graph). */
  /** @type {((line: string) => void) | null} */ onLog = null;

  /** @param {import('node:child_process').ChildProcessWithoutNullStreams} proc */
  constructor(proc) {
    this.proc = proc;
    proc.stdout.on('data', (/** @type {Buffer} */ chunk) => this.onData(chunk));
    proc.stderr.on('data', (/** @type {Buffer} */ chunk) => {
      const lines = chunk.toString().split('\n').filter((l) => l.trim());
      this.stderrTail.push(...lines);
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - 20));
      if (this.onLog) for (const l of lines) this.onLog(l);
    });
    proc.stdin.on('error', () => undefined); // a dead process: reported by 'exit'
    proc.on('error', (err) => {
      this.stderrTail.push(err.message);
      this.onExit();
    });
    proc.on('exit', () => this.onExit());
  }

  onExit() {
    this.exited = true;
    for (const w of this.waiters.splice(0)) w(null);
  }

  /**
   * Collects stdout's chunks and cuts them into messages. A frame arrives in many pipe chunks (a batch of 32 at
   * 512² is 12 MB): the chunks are kept in a list and joined once, when the message is complete.
   * @param {Buffer} chunk
   */
  onData(chunk) {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 8) return;
        const head = this.take(8);
        this.kind = head.readUInt32LE(0);
        this.need = head.readUInt32LE(4);
      }
      if (this.buffered < this.need) return;
      const msg = { kind: this.kind, payload: this.take(this.need) };
      this.need = -1;
      const w = this.waiters.shift();
      if (w) w(msg);
      else this.messages.push(msg);
    }
  }

  /** The next `n` buffered bytes (a copy of its own), removed from the chunk list. @param {number} n */
  take(n) {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = /** @type {Buffer} */ (this.chunks[0]);
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }

  /** @param {number} timeoutMs @returns {Promise<Message>} */
  next(timeoutMs) {
    const queued = this.messages.shift();
    if (queued) return Promise.resolve(queued);
    if (this.exited) return Promise.reject(new Error(this.deathReason()));
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`the PyTorch render process did not answer within ${timeoutMs} ms`));
      }, timeoutMs) : null;
      /** @param {Message | null} m */
      const done = (m) => {
        if (timer) clearTimeout(timer);
        if (m) resolve(m);
        else reject(new Error(this.deathReason()));
      };
      this.waiters.push(done);
    });
  }

  deathReason() {
    const code = this.proc.exitCode;
    const tail = this.stderrTail.slice(-3).join(' | ');
    return `the PyTorch render process ended${code === null ? '' : ` (exit ${code})`}${tail ? `: ${tail}` : ''}`;
  }

  /** @param {Message} m */
  static json(m) {
    /** @type {unknown} */
    const v = JSON.parse(m.payload.toString('utf8'));
    if (typeof v !== 'object' || v === null) throw new Error('the PyTorch render process sent a malformed message');
    return /** @type {Record<string, unknown>} */ (v);
  }

  /**
   * Starts the process and waits until it has loaded the graph. Throws with the process's reason (no CUDA device,
   * no torch, an operator it does not know …); the caller falls back to the CPU.
   * @param {string} modelPath
   */
  static async create(modelPath) {
    const args = ['-m', 'train.render_process', '--model', modelPath, '--device', process.env.DNP_TORCH_DEVICE || 'cuda',
      '--autocast', process.env.DNP_TORCH_AUTOCAST || 'off'];
    if (process.env.DNP_TORCH_GRAPHS === '0') args.push('--no-graphs');
    const env = { ...process.env, PYTHONPATH: [PACKAGE_ROOT, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1' };
    const proc = spawn(torchPython(), args, { cwd: PACKAGE_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const s = new TorchSession(proc);
    try {
      const first = await s.next(START_TIMEOUT_MS);
      const m = first.kind === MSG_JSON ? TorchSession.json(first) : null;
      if (!m || m.type !== 'ready') {
        throw new Error(m && typeof m.message === 'string' ? m.message : 'the PyTorch render process sent no ready message');
      }
      if (!Array.isArray(m.inputs) || !Array.isArray(m.outputs)) throw new Error('the PyTorch render process sent a malformed ready message');
      s.inputMetadata = /** @type {Meta[]} */ (m.inputs);
      s.outputMetadata = /** @type {Meta[]} */ (m.outputs);
      s.torchDevice = String(m.device);
      return s;
    } catch (err) {
      await s.release();
      throw err;
    }
  }

  /**
   * Renders one batch. `feeds` holds one float32 tensor ({ data, dims }); resolves to { [output name]: { type, dims, data } }.
   * @param {Record<string, { data: unknown, dims: readonly number[] }>} feeds
   */
  async run(feeds) {
    const input = Object.values(feeds)[0];
    if (!input || !(input.data instanceof Float32Array) || input.dims.length !== 2) throw new Error('torch session: one float32 [batch, N] input expected');
    const x = input.data;
    const head = Buffer.alloc(8);
    head.writeUInt32LE(OP_RUN, 0);
    head.writeUInt32LE(input.dims[0] ?? 0, 4);
    this.proc.stdin.write(head);
    this.proc.stdin.write(Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const m = await this.next(0);
    if (m.kind === MSG_JSON) {
      const j = TorchSession.json(m);
      throw new Error(typeof j.message === 'string' ? j.message : 'the PyTorch render process failed');
    }
    if (m.kind !== MSG_RESULT || m.payload.length < 16) throw new Error('the PyTorch render process sent a malformed result');
    const code = m.payload.readUInt32LE(8);
    const ndim = m.payload.readUInt32LE(12);
    const dims = [];
    for (let i = 0; i < ndim; i++) dims.push(m.payload.readUInt32LE(16 + 4 * i));
    const start = 16 + 4 * ndim;
    const bytes = m.payload.subarray(start);
    const count = dims.reduce((a, b) => a * b, 1);
    // a view where the bytes are 4-aligned (large payloads have a buffer of their own), else a copy
    const aligned = (bytes.byteOffset & 3) === 0;
    const data = code === 1
      ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
      : aligned ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2) : new Float32Array(new Uint8Array(bytes).buffer);
    if (data.length !== count) throw new Error('the PyTorch render process sent a result of the wrong size');
    const name = this.outputMetadata[0]?.name ?? 'rgb';
    return { [name]: { type: code === 1 ? 'uint8' : 'float32', dims, data } };
  }

  async release() {
    if (this.released) return;
    this.released = true;
    if (!this.exited) {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(OP_CLOSE, 0);
      try {
        this.proc.stdin.end(head);
      } catch {
        // already closed
      }
      const gone = new Promise((resolve) => (this.exited ? resolve(undefined) : this.proc.once('exit', () => resolve(undefined))));
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(timer);
    }
  }
}
