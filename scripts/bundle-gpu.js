// `npm run bundle:gpu`: a folder (at most 60 MiB) that measures the renderer on a GPU host that has no Node.js,
// no network and no package registry. It holds:
//   runtime.tar.xz  this machine's node binary (process.execPath), onnxruntime-node's JS and its linux-x64 native
//                   library (WebGPU provider included), and the Vulkan and GL dispatch loaders (Debian libvulkan1,
//                   libglvnd0, libglx0, libegl1, libgl1, libopengl0, libgles2: the NVIDIA driver's Vulkan ICD is
//                   libGLX_nvidia, which needs libglvnd) when available
//   app.tar.xz      the render bench bundled into one file (server/src/bench/gpu-bundle-bench.ts, esbuild), the
//                   render worker and the `torch` device's session (the PyTorch render process: train/onnx_torch.py
//                   and train/render_process.py, run by the host's python3), untrained `paper` avatars at
//                   256/512/1024, each twice: fp16 weights with yuv420p output (for GPU providers) and fp32 with RGB
//                   output (as today's avatars), and any avatar folders given with --avatar
//   run-bench.sh    unpacks both into a work folder and runs the bench: every avatar, batch 1/8/32, every
//                   backend that starts; writes results.json and results.md
//   bundle.json     what is inside (versions, sizes, avatar formats), README.txt
// With --encoder, a second folder beside it (OUT-encoder, also at most 60 MiB): the encode bench (`dnp bench
// encode`: how many sessions the host's cores can encode) with node-av's linux-x64 library (FFmpeg, 175 MB, 35 MiB
// compressed: too much for the first folder). Its run-encode.sh uses the first folder's unpacked node,
// onnxruntime-node (to render the pictures it encodes) and avatars.
// The compressed runtime and the avatars are cached in node_modules/.cache/dnp-gpu-bundle (keyed by their
// inputs), so a rebuild takes seconds; the first build compresses ~150 MB with xz (minutes on 2 cores).
// @ts-check
import { build } from 'esbuild';
import { register } from 'tsx/esm/api';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAX_BYTES = 60 * 1024 * 1024;
/** fp16 + yuv420p: what a GPU provider should run; fp32 + rgb: today's avatars, for the comparison. */
const DEFAULT_FORMATS = ['fp16-yuv420p', 'fp32-rgb'];
const USAGE = `usage: npm run bundle:gpu -- [--out DIR] [--sizes 256,512,1024] [--format fp16-yuv420p] [--avatar DIR] [--no-vulkan] [--encoder]
  --out DIR       output folder (default dist/gpu-bundle; replaced)
  --sizes LIST    paper avatar sizes (default 256,512,1024)
  --format F      avatar export: fp16-yuv420p, fp16-rgb, fp32-yuv420p, fp32-rgb; repeat for several
                  (default: fp16-yuv420p and fp32-rgb)
  --avatar DIR    also bundle this avatar folder (avatar.json + avatar.onnx), e.g. avatars/default; repeatable
  --no-vulkan     do not carry the Vulkan and GL dispatch loaders (Debian packages, \`apt-get download\`)
  --encoder       also write DIR-encoder: the encode bench and node-av (FFmpeg) for the host's CPU cores;
                  its run-encode.sh runs after DIR's run-bench.sh has unpacked DIR (same work folder)
  --help
Writes at most 60 MiB per folder (fails otherwise). The python used for the avatars is $DNP_PYTHON or /usr/bin/python3.`;

/** @param {string[]} argv */
async function parseArgs(argv) {
  register(); // the shared option parser is TypeScript (as bin/dnp.js runs it)
  const { commaList, intList, parseCommandLine, usageError } = await import('../server/src/cli/args.ts');
  try {
    const cl = parseCommandLine(argv, { out: { type: 'string' }, sizes: { type: 'string' }, format: { type: 'string' }, avatar: { type: 'string' }, 'no-vulkan': { type: 'boolean' }, encoder: { type: 'boolean' } }, { joinRepeated: true });
    if (cl.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const sizes = intList('sizes', cl.str('sizes') ?? '256,512,1024', 64, 2048);
    if (sizes.some((n) => n % 64)) usageError('--sizes: multiples of 64 in 64..2048');
    const formats = commaList(cl.str('format') ?? DEFAULT_FORMATS.join(','));
    for (const f of formats) if (!/^(fp16|fp32)-(rgb|yuv420p)$/.test(f)) usageError(`--format: unknown format "${f}"`);
    const extra = commaList(cl.str('avatar') ?? '').map((d) => resolve(d));
    for (const d of extra) if (!existsSync(join(d, 'avatar.json')) || !existsSync(join(d, 'avatar.onnx'))) usageError(`--avatar ${d}: not an avatar folder (avatar.json + avatar.onnx)`);
    return { out: resolve(cl.str('out') ?? join(ROOT, 'dist', 'gpu-bundle')), sizes, formats, extra, vulkan: !cl.flag('no-vulkan'), encoder: cl.flag('encoder') };
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
}

/** @param {string} msg @returns {never} */
function usage(msg) {
  process.stderr.write(`bundle:gpu: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

/** @param {string} line */
function say(line) {
  process.stderr.write(`bundle:gpu: ${line}\n`);
}

/** sha256 over file contents (or path + size + mtime for large files) and extra strings. @param {string[]} files @param {string[]} extra */
function cacheKey(files, extra = []) {
  const h = createHash('sha256');
  for (const f of files) {
    const st = statSync(f);
    h.update(basename(f));
    if (st.size > 4 * 1024 * 1024) h.update(`${st.size}:${st.mtimeMs}`);
    else h.update(readFileSync(f));
  }
  for (const e of extra) h.update(e);
  return h.digest('hex').slice(0, 16);
}

/** Writes `dest` through a temporary name with `make(tmp)`, unless it exists. @param {string} dest @param {(tmp: string) => Promise<void>} make */
async function cached(dest, make) {
  if (existsSync(dest)) return;
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await make(tmp);
    renameSync(tmp, dest);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** @type {Set<import('node:child_process').ChildProcess>} the commands running now (stopped when the build fails) */
const running = new Set();

/** Runs a command to its end, its stderr passed through; rejects on a non-zero exit. @param {string} cmd @param {string[]} args @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [opts] @returns {Promise<void>} */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'ignore', 'inherit'] });
    running.add(child);
    child.on('error', (err) => {
      running.delete(child);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      running.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}`));
    });
  });
}

/** `jobs` run at most `limit` at a time; the results in the jobs' order. @template T @param {Array<() => Promise<T>>} jobs @param {number} limit @returns {Promise<T[]>} */
async function inPool(jobs, limit) {
  /** @type {T[]} */
  const out = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < jobs.length; i = next++) out[i] = await /** @type {() => Promise<T>} */ (jobs[i])();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

/** tar + xz of `dir`'s contents into `file` (xz -6, all cores). @param {string} dir @param {string} file */
function tarXz(dir, file) {
  return run('sh', ['-c', 'tar -C "$1" -cf - . | xz -T0 -6 > "$2"', 'sh', dir, file]);
}

const ORT_DIR = join(ROOT, 'node_modules', 'onnxruntime-node');
const ORT_COMMON = join(ROOT, 'node_modules', 'onnxruntime-common');

function ortNativeDir() {
  const bin = join(ORT_DIR, 'bin');
  const napi = readdirSync(bin).find((d) => d.startsWith('napi-v') && existsSync(join(bin, d, 'linux', 'x64', 'libonnxruntime.so.1')));
  if (!napi) throw new Error(`${bin}: no napi-v*/linux/x64/libonnxruntime.so.1 (onnxruntime-node not installed for linux-x64?)`);
  return { napi, dir: join(bin, napi, 'linux', 'x64') };
}

/**
 * The Vulkan loader and the GL dispatch libraries the NVIDIA driver's Vulkan ICD (libGLX_nvidia.so.0) needs: on the
 * lent GPU hosts WebGPU found no adapter without them ("vkCreateInstance: Found no drivers"; 29 Nov 2026).
 */
const LOADER_PACKAGES = ['libvulkan1', 'libglvnd0', 'libglx0', 'libegl1', 'libgl1', 'libopengl0', 'libgles2'];

/** The loaders' .so files (Debian packages above), from `apt-get download`; null when unavailable. @param {string} cache */
function vulkanLoader(cache) {
  const dir = join(cache, 'loaders');
  if (!existsSync(join(dir, 'done'))) {
    try {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      execFileSync('apt-get', ['download', ...LOADER_PACKAGES], { cwd: dir, stdio: 'ignore', timeout: 120_000 });
      const debs = readdirSync(dir).filter((f) => f.endsWith('.deb')).sort();
      if (debs.length !== LOADER_PACKAGES.length) throw new Error(`got ${debs.length} of ${LOADER_PACKAGES.length} packages`);
      for (const deb of debs) execFileSync('dpkg-deb', ['-x', deb, 'x'], { cwd: dir, stdio: 'ignore' });
      writeFileSync(join(dir, 'done'), debs.join(' '));
    } catch (err) {
      say(`Vulkan/GL loaders not carried (apt-get download failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}); the host must have libvulkan.so.1 and libglvnd for WebGPU`);
      return null;
    }
  }
  const lib = join(dir, 'x', 'usr', 'lib', 'x86_64-linux-gnu');
  const files = existsSync(lib) ? readdirSync(lib).filter((f) => f.endsWith('.so') || /\.so\.\d/.test(f)) : [];
  return files.length ? { lib, files, deb: readFileSync(join(dir, 'done'), 'utf8') } : null;
}

/** runtime.tar.xz: bin/node, node_modules/onnxruntime-{node,common} (linux-x64 only), lib/libvulkan.so.1. @param {string} cache @param {boolean} withVulkan */
async function runtimeArchive(cache, withVulkan) {
  const ort = ortNativeDir();
  const vk = withVulkan ? vulkanLoader(cache) : null;
  const natives = readdirSync(ort.dir).map((f) => join(ort.dir, f));
  const key = cacheKey([process.execPath, ...natives, join(ORT_DIR, 'package.json'), join(ORT_COMMON, 'package.json')], [process.version, vk ? vk.deb : 'no-vulkan']);
  const file = join(cache, `runtime-${key}.tar.xz`);
  await cached(file, async (tmp) => {
    say(`compressing the runtime (node ${process.version}, onnxruntime-node ${readJson(join(ORT_DIR, 'package.json')).version}) with xz; minutes the first time …`);
    const stage = `${tmp}.d`;
    try {
      mkdirSync(join(stage, 'bin'), { recursive: true });
      copyFileSync(process.execPath, join(stage, 'bin', 'node'));
      const ortOut = join(stage, 'node_modules', 'onnxruntime-node');
      cpSync(join(ORT_DIR, 'dist'), join(ortOut, 'dist'), { recursive: true, filter: (s) => !s.endsWith('.map') && !s.endsWith('.d.ts') });
      copyFileSync(join(ORT_DIR, 'package.json'), join(ortOut, 'package.json'));
      cpSync(ort.dir, join(ortOut, 'bin', ort.napi, 'linux', 'x64'), { recursive: true });
      const commonOut = join(stage, 'node_modules', 'onnxruntime-common');
      cpSync(join(ORT_COMMON, 'dist'), join(commonOut, 'dist'), { recursive: true, filter: (s) => !s.endsWith('.map') && !s.endsWith('.d.ts') });
      copyFileSync(join(ORT_COMMON, 'package.json'), join(commonOut, 'package.json'));
      if (vk) {
        mkdirSync(join(stage, 'lib'), { recursive: true });
        for (const f of vk.files) cpSync(join(vk.lib, f), join(stage, 'lib', f), { dereference: true });
      }
      await tarXz(stage, tmp);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  });
  return { file, vulkan: vk ? vk.deb : null };
}

/** @param {string} p */
function readJson(p) {
  return JSON.parse(readFileSync(p, 'utf8'));
}

/** An untrained paper avatar (python3 -m train export), cached by the training code's contents. @param {string} cache @param {number} size @param {string} format */
async function paperAvatar(cache, size, format) {
  const py = process.env.DNP_PYTHON ?? '/usr/bin/python3';
  // what an untrained `paper` (variant F) export depends on: not the trainer, the bench or variant W's model_warp.py
  const trainFiles = ['build.py', 'config.py', 'export.py', 'model.py', 'onnx_fp16.py', 'onnx_yuv.py'].map((f) => join(ROOT, 'train', f));
  const dir = join(cache, 'avatars', `paper-${size}-${format}-${cacheKey(trainFiles)}`);
  await cached(dir, async (tmp) => {
    const [precision, output] = format.split('-');
    const args = ['-m', 'train', 'export', '--untrained', '--preset', 'paper', '--size', String(size), '--output', String(output), '--name', `untrained-paper-${size}-${format}`, '--out', tmp];
    if (precision === 'fp16') args.push('--fp16');
    say(`exporting ${py} ${args.join(' ')} …`);
    await run(py, args, { cwd: ROOT, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  });
  return dir;
}

/** @typedef {{ name: string, size: number, format: string, dir: string, extra?: boolean }} BundledAvatar */

/** What the `torch` device runs on the host (python3 -m train.render_process). */
const TORCH_RENDER_FILES = ['__init__.py', 'onnx_torch.py', 'render_process.py'];

/** One ESM file for Node 20 from `entry` and what it imports, the `external` packages left to node_modules.
 * @param {string} entry @param {string} outfile @param {string[]} external */
function bundleFile(entry, outfile, external) {
  return build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external,
    // pino and friends are CommonJS: give the ESM bundle a require()
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
}

/** app.tar.xz: bench.mjs, render-worker.mjs, package.json, avatars/. @param {string} cache @param {string} out @param {BundledAvatar[]} avatars */
async function appArchive(cache, out, avatars) {
  const stage = join(tmpdir(), `dnp-gpu-app-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  try {
    mkdirSync(join(stage, 'avatars'), { recursive: true });
    await bundleFile(join(ROOT, 'scripts', 'gpu-bundle-entry.ts'), join(stage, 'bench.mjs'), ['onnxruntime-node']);
    copyFileSync(join(ROOT, 'server', 'src', 'render', 'render-worker.mjs'), join(stage, 'render-worker.mjs'));
    copyFileSync(join(ROOT, 'server', 'src', 'render', 'torch-session.mjs'), join(stage, 'torch-session.mjs'));
    mkdirSync(join(stage, 'train'), { recursive: true });
    for (const f of TORCH_RENDER_FILES) copyFileSync(join(ROOT, 'train', f), join(stage, 'train', f));
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify({ name: 'dnp-gpu-bench', private: true, type: 'module' })}\n`);
    for (const a of avatars) cpSync(a.dir, join(stage, 'avatars', a.name), { recursive: true });
    // the avatar folders' names in the cache carry their own content keys
    const key = cacheKey([join(stage, 'bench.mjs'), join(stage, 'render-worker.mjs'), join(stage, 'torch-session.mjs'), ...TORCH_RENDER_FILES.map((f) => join(stage, 'train', f)), ...avatars.filter((a) => a.extra).map((a) => join(a.dir, 'avatar.onnx'))], avatars.map((a) => `${a.name}=${a.dir}`));
    const file = join(cache, `app-${key}.tar.xz`);
    await cached(file, (tmp) => tarXz(stage, tmp));
    copyFileSync(file, join(out, 'app.tar.xz'));
    return file;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * The encoder part (--encoder): encoder.tar.xz holds node_modules/node-av (its JS) and @seydx/node-av-linux-x64
 * (the FFmpeg library), and app/encode-bench.mjs + app/encode-worker.mjs (esbuild, node-av and onnxruntime-node
 * left outside); run-encode.sh unpacks it into the render bundle's work folder and runs the bench there.
 * @param {string} cache @param {string} out
 */
async function encoderPart(cache, out) {
  const stage = join(tmpdir(), `dnp-gpu-encoder-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  try {
    const app = join(stage, 'app');
    mkdirSync(app, { recursive: true });
    const external = ['onnxruntime-node', 'node-av', 'node-av/*'];
    await bundleFile(join(ROOT, 'scripts', 'gpu-bundle-encode-entry.ts'), join(app, 'encode-bench.mjs'), external);
    // the encode pool starts its workers from ./encode-worker.mjs beside the code that runs it
    await bundleFile(join(ROOT, 'server', 'src', 'media', 'encode-worker-main.ts'), join(app, 'encode-worker.mjs'), external);
    const av = join(ROOT, 'node_modules', 'node-av');
    const native = join(ROOT, 'node_modules', '@seydx', 'node-av-linux-x64');
    if (!existsSync(join(native, 'node-av.node'))) throw new Error(`${native}: no node-av.node (node-av's linux-x64 package is not installed)`);
    cpSync(join(av, 'dist'), join(stage, 'node_modules', 'node-av', 'dist'), { recursive: true, filter: (f) => !f.endsWith('.map') && !f.endsWith('.d.ts') });
    copyFileSync(join(av, 'package.json'), join(stage, 'node_modules', 'node-av', 'package.json'));
    cpSync(native, join(stage, 'node_modules', '@seydx', 'node-av-linux-x64'), { recursive: true });
    const key = cacheKey([join(app, 'encode-bench.mjs'), join(app, 'encode-worker.mjs'), join(native, 'node-av.node'), join(av, 'package.json')]);
    const file = join(cache, `encoder-${key}.tar.xz`);
    if (!existsSync(file)) say('compressing node-av (FFmpeg, 175 MB) with xz; minutes the first time …');
    await cached(file, (tmp) => tarXz(stage, tmp));
    mkdirSync(out, { recursive: true });
    copyFileSync(file, join(out, 'encoder.tar.xz'));
    copyFileSync(join(ROOT, 'scripts', 'gpu-bundle', 'run-encode.sh'), join(out, 'run-encode.sh'));
    execFileSync('chmod', ['+x', join(out, 'run-encode.sh')]);
    return file;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Removes cached archives and avatars that this build did not use (older keys). @param {string} cache @param {string[]} used */
function prune(cache, used) {
  const keep = new Set(used);
  for (const f of readdirSync(cache)) if (/^(app|runtime|encoder)-[0-9a-f]+\.tar\.xz$/.test(f) && !keep.has(join(cache, f))) rmSync(join(cache, f), { force: true });
  const avatarsDir = join(cache, 'avatars');
  for (const d of readdirSync(avatarsDir)) if (!keep.has(join(avatarsDir, d))) rmSync(join(avatarsDir, d), { recursive: true, force: true });
  rmSync(join(cache, 'vulkan'), { recursive: true, force: true }); // the loaders' folder before it carried libglvnd
}

/** @param {string} dir */
function dirBytes(dir) {
  return readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

async function main() {
  const a = await parseArgs(process.argv.slice(2));
  const cache = join(ROOT, 'node_modules', '.cache', 'dnp-gpu-bundle');
  mkdirSync(cache, { recursive: true });
  const out = a.out;
  /** @type {BundledAvatar[]} */
  const avatars = [];
  // the runtime's compression (xz on all cores) and the exports (one thread each, as many at a time as there are
  // cores) overlap: on a cold cache this halves the wait on 2 cores
  const runtimeDone = runtimeArchive(cache, a.vulkan);
  runtimeDone.catch(() => undefined); // awaited below; an export's failure must not leave it unhandled
  const jobs = a.sizes.flatMap((size) => a.formats.map((format) => ({ size, format })));
  const dirs = await inPool(jobs.map((j) => () => paperAvatar(cache, j.size, j.format)), availableParallelism());
  jobs.forEach((j, i) => avatars.push({ name: `paper-${j.size}-${j.format}`, size: j.size, format: j.format, dir: /** @type {string} */ (dirs[i]) }));
  for (const dir of a.extra) {
    const m = readJson(join(dir, 'avatar.json'));
    const name = basename(dir);
    if (avatars.some((x) => x.name === name)) usage(`--avatar ${dir}: a bundled avatar is already named ${name}`);
    avatars.push({ name, size: m.width, format: `${m.model.precision ?? 'fp32'}-${m.model.outputFormat ?? 'rgb'}`, dir, extra: true });
  }
  const runtime = await runtimeDone;
  const staging = `${out}.tmp-${process.pid}`;
  const encoderOut = `${out}-encoder`;
  const encoderStaging = `${encoderOut}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    copyFileSync(runtime.file, join(staging, 'runtime.tar.xz'));
    const app = await appArchive(cache, staging, avatars);
    const encoder = a.encoder ? await encoderPart(cache, encoderStaging) : null;
    prune(cache, [runtime.file, app, ...(encoder ? [encoder] : []), ...avatars.map((x) => x.dir)]);
    copyFileSync(join(ROOT, 'scripts', 'gpu-bundle', 'run-bench.sh'), join(staging, 'run-bench.sh'));
    copyFileSync(join(ROOT, 'scripts', 'gpu-bundle', 'README.txt'), join(staging, 'README.txt'));
    execFileSync('chmod', ['+x', join(staging, 'run-bench.sh')]);
    const info = {
      kind: 'dnp-gpu-bundle',
      createdAt: new Date().toISOString(),
      node: process.version,
      onnxruntimeNode: readJson(join(ORT_DIR, 'package.json')).version,
      vulkanLoader: runtime.vulkan,
      avatars: avatars.map((x) => {
        const m = readJson(join(x.dir, 'avatar.json'));
        return { name: x.name, size: x.size, outputFormat: m.model.outputFormat, precision: m.model.precision, gflopsPerFrame: m.training.flopsPerFrame / 1e9, onnxBytes: statSync(join(x.dir, 'avatar.onnx')).size };
      }),
      files: /** @type {Record<string, number>} */ ({}),
    };
    for (const f of readdirSync(staging)) info.files[f] = statSync(join(staging, f)).size;
    writeFileSync(join(staging, 'bundle.json'), `${JSON.stringify(info, null, 1)}\n`);
    const total = dirBytes(staging);
    if (total > MAX_BYTES) throw new Error(`the bundle is ${(total / 2 ** 20).toFixed(1)} MiB, over the 60 MiB limit (${JSON.stringify(info.files)}); use fewer --sizes or an fp16 --format`);
    if (encoder && dirBytes(encoderStaging) > MAX_BYTES) throw new Error(`the encoder part is ${(dirBytes(encoderStaging) / 2 ** 20).toFixed(1)} MiB, over the 60 MiB limit`);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(dirname(out), { recursive: true });
    renameSync(staging, out);
    say(`wrote ${out} (${(total / 2 ** 20).toFixed(1)} MiB): ${Object.entries(info.files).map(([f, n]) => `${f} ${(Number(n) / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);
    rmSync(encoderOut, { recursive: true, force: true });
    if (encoder) {
      renameSync(encoderStaging, encoderOut);
      say(`wrote ${encoderOut} (${(dirBytes(encoderOut) / 2 ** 20).toFixed(1)} MiB): the encode bench; on the host after run-bench.sh: ${basename(encoderOut)}/run-encode.sh`);
    }
    say(`on the GPU host: copy the folder, then ./run-bench.sh (see README.txt)`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
    rmSync(encoderStaging, { recursive: true, force: true });
  }
}

main().catch((err) => {
  say(err instanceof Error ? err.message : String(err));
  for (const child of running) child.kill('SIGTERM'); // the other exports and the compression, still going
  process.exit(1);
});

