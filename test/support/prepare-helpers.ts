/** Helpers for the `dnp prepare` tests: an NPY reader, the CLI as a child process, client build check. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../server/src/project-paths.js';

export const ROOT = PROJECT_ROOT;
export const DATA = join(ROOT, '..', 'shared', 'data');
export const MODEL = join(DATA, 'face_landmarker.task');

export interface Npy {
  descr: string;
  shape: number[];
  data: Float32Array | Uint8Array;
}

/** Reads a .npy v1.0 file written as '<f4' or '|u1', C order. */
export function readNpy(path: string): Npy {
  const b = readFileSync(path);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY' || b[6] !== 1) throw new Error(`${path}: not NPY v1`);
  const hlen = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hlen);
  const descr = /'descr': '([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape': \(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined || !header.includes("'fortran_order': False")) throw new Error(`${path}: bad header ${header}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const body = b.subarray(10 + hlen);
  const count = shape.reduce((a, c) => a * c, 1);
  if (descr === '<f4') {
    const ab = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
    const data = new Float32Array(ab);
    if (data.length !== count) throw new Error(`${path}: ${data.length} values for shape ${shape}`);
    return { descr, shape, data };
  }
  if (descr === '|u1') {
    if (body.length !== count) throw new Error(`${path}: ${body.length} values for shape ${shape}`);
    return { descr, shape, data: new Uint8Array(body) };
  }
  throw new Error(`${path}: unexpected dtype ${descr}`);
}

/** Builds client/dist when the tracking page is missing or older than its sources. */
export function ensureClientBuilt(): void {
  const out = join(ROOT, 'client', 'dist', 'prepare-page.js');
  const sources = [join(ROOT, 'client', 'src', 'prepare-page.ts'), join(ROOT, 'client', 'src', 'tracking', 'face-tracker.ts')];
  const stale = !existsSync(out) || sources.some((s) => statSync(s).mtimeMs > statSync(out).mtimeMs);
  if (stale) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-client.js')], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`client build failed: ${r.stderr}`);
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
}

/** Runs `node bin/dnp.js prepare ARGS` and collects its output. `onStderr` may act on progress (e.g. send SIGINT). */
export function runPrepareCli(args: string[], opts: { env?: NodeJS.ProcessEnv; onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'dnp.js'), 'prepare', ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr, (s) => child.kill(s));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout }));
  });
}

export interface TestVideoOptions {
  seconds: number;
  /** Store the frames turned 90° counter-clockwise with a display matrix saying "rotate 90° clockwise". */
  rotate?: boolean;
  /** Drop every third frame (variable frame rate). */
  dropEveryThird?: boolean;
  /** Source frame indices to replace by plain grey (no face). */
  blank?: (i: number) => boolean;
}

/**
 * Writes a test recording made from the first `seconds` of `source` (H.264 in mp4, no audio) with
 * node-av (decode, filter, encode, mux). With `rotate` it is stored the way phones store portrait video
 * (ffprobe: "rotation of -90.00 degrees"). Returns how many frames were written.
 */
export async function writeTestVideo(source: string, out: string, o: TestVideoOptions): Promise<{ keptFrames: number }> {
  const { Demuxer, Decoder, Encoder, FilterAPI, Muxer } = await import('node-av/api');
  const { AV_PKT_DATA_DISPLAYMATRIX, AV_PIX_FMT_YUV420P, FF_ENCODER_LIBX264 } = await import('node-av/constants');
  const { Frame, Packet } = await import('node-av/lib');
  const input = await Demuxer.open(source);
  const vs = input.video();
  if (!vs) throw new Error(`${source}: no video`);
  if (o.rotate) {
    const m = Buffer.alloc(36);
    m.writeInt32LE(0, 0);
    m.writeInt32LE(1 << 16, 4);
    m.writeInt32LE(-(1 << 16), 12);
    m.writeInt32LE(0, 16);
    m.writeInt32LE(1 << 30, 32);
    vs.codecpar.addCodedSideData(AV_PKT_DATA_DISPLAYMATRIX, m);
  }
  const dec = await Decoder.create(vs);
  const filter = FilterAPI.create(o.rotate ? 'transpose=cclock,format=yuv420p' : 'format=yuv420p');
  const enc = await Encoder.create(FF_ENCODER_LIBX264, {
    gopSize: 30,
    maxBFrames: 0,
    configure: (ctx) => {
      ctx.setOption('preset', 'ultrafast');
      ctx.setOption('crf', '18');
      ctx.setOption('threads', '1');
    },
  });
  const mux = await Muxer.open(out, { format: 'mp4' });
  const idx = mux.addStream(enc, { inputStream: vs });
  const pkt = new Packet();
  pkt.alloc();
  const tb = vs.timeBase.num / vs.timeBase.den;
  let decoded = 0;
  let kept = 0;
  try {
    for (;;) {
      if (input.getFormatContext().readFrameSync(pkt) < 0) break;
      if (pkt.streamIndex !== vs.index) {
        pkt.unref();
        continue;
      }
      pkt.timeBase = vs.timeBase;
      const frames = dec.decodeAllSync(pkt);
      pkt.unref();
      let done = false;
      for (const f of frames) {
        const n = decoded++;
        if (Number(f.pts) * tb >= o.seconds) done = true;
        if (done || (o.dropEveryThird && n % 3 === 2)) {
          f.free();
          continue;
        }
        kept++;
        for (const g of filter.processAllSync(f)) {
          let frame = g;
          if (o.blank?.(n)) {
            const grey = Buffer.alloc((g.width * g.height * 3) / 2, 128);
            frame = Frame.fromVideoBuffer(grey, { width: g.width, height: g.height, format: AV_PIX_FMT_YUV420P, timeBase: g.timeBase, pts: g.pts });
          }
          for (const p of await enc.encodeAll(frame)) await mux.writePacket(p, idx);
          if (frame !== g) frame.free();
          g.free();
        }
        f.free();
      }
      if (done) break;
    }
    for (const p of await enc.encodeAll(null)) await mux.writePacket(p, idx);
  } finally {
    await mux.close();
    enc.close();
    filter.close();
    dec.close();
    pkt.free();
    await input.close();
  }
  return { keptFrames: kept };
}
