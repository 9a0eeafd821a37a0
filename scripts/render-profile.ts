// Where an avatar model's render time goes: onnxruntime-node's own profiler (enableProfiling) over many runs with the
// server's session options (CPU, `threads` intra-op threads, graph optimisation 'all', sequential), summed per
// operator type and per node, in ms a run. The same input as scripts/render-ab.ts (the normalised conditioning at
// 0.5 sin(0.7 i + run): a face near the avatar's usual pose and expression, moving a little from run to run).
// The profiler adds its own overhead; compare graphs with scripts/render-ab.ts, use this to see where to look.
// Run: npx tsx scripts/render-profile.ts AVATAR_DIR_OR_ONNX [--runs 100] [--threads 1] [--top 30]
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { parseCommandLine, UsageError, valueOptions } from '../server/src/cli/args.js';

const USAGE = 'usage: npx tsx scripts/render-profile.ts AVATAR_DIR_OR_ONNX [--runs 100] [--threads 1] [--top 30]';
const WARMUP = 10;

interface KernelEvent {
  node: string;
  op: string;
  us: number;
  shape: string;
}

/** The kernel events of an onnxruntime profile (a JSON array of trace events) after the first `skipRuns` model
 *  runs (the warm-up); anything else is refused. */
function kernelEvents(text: string, skipRuns: number): KernelEvent[] {
  const data: unknown = JSON.parse(text);
  if (!Array.isArray(data)) throw new Error('not an onnxruntime profile (expected a JSON array of events)');
  type Event = { cat?: unknown; name?: unknown; ts?: unknown; dur?: unknown; args?: unknown };
  const events = data.filter((e): e is Event => typeof e === 'object' && e !== null);
  const runEnds = events.flatMap((e) => (e.cat === 'Session' && e.name === 'model_run' && typeof e.ts === 'number' && typeof e.dur === 'number' ? [e.ts + e.dur] : []));
  runEnds.sort((a, b) => a - b);
  const from = skipRuns > 0 ? (runEnds[skipRuns - 1] ?? Infinity) : -Infinity;
  const out: KernelEvent[] = [];
  for (const ev of events) {
    if (ev.cat !== 'Node' || typeof ev.name !== 'string' || !ev.name.endsWith('_kernel_time') || typeof ev.dur !== 'number') continue;
    if (typeof ev.ts !== 'number' || ev.ts < from) continue;
    const args = (typeof ev.args === 'object' && ev.args !== null ? ev.args : {}) as { op_name?: unknown; output_type_shape?: unknown };
    out.push({
      node: ev.name.slice(0, -'_kernel_time'.length),
      op: typeof args.op_name === 'string' ? args.op_name : '?',
      us: ev.dur,
      shape: JSON.stringify(args.output_type_shape ?? ''),
    });
  }
  return out;
}

function sum<K>(events: readonly KernelEvent[], key: (e: KernelEvent) => K): Map<K, number> {
  const m = new Map<K, number>();
  for (const e of events) m.set(key(e), (m.get(key(e)) ?? 0) + e.us);
  return m;
}

async function main(): Promise<number> {
  const cl = parseCommandLine(process.argv.slice(2), valueOptions('runs', 'threads', 'top'), { maxPositionals: 1 });
  if (cl.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const target = cl.positionals[0];
  if (!target) throw new UsageError('an avatar folder or .onnx file is needed (see --help)');
  if (!existsSync(target)) throw new UsageError(`${target}: no such file or folder`);
  const model = statSync(target).isDirectory() ? join(target, 'avatar.onnx') : target;
  const runs = cl.int('runs', 1, 100_000, 100);
  const threads = cl.int('threads', 1, 64, 1);
  const top = cl.int('top', 1, 1000, 30);
  const dir = mkdtempSync(join(tmpdir(), 'dnp-profile-'));
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1,
      intraOpNumThreads: threads, enableProfiling: true, profileFilePrefix: join(dir, 'profile'),
    });
    const name = session.inputNames[0];
    if (!name) throw new Error(`${model}: the model has no input`);
    const cond = new Float32Array(60);
    for (let i = 0; i < WARMUP + runs; i++) {
      for (let k = 0; k < cond.length; k++) cond[k] = 0.5 * Math.sin(0.7 * k + i);
      await session.run({ [name]: new ort.Tensor('float32', cond, [1, 60]) });
    }
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    const events = kernelEvents(readFileSync(join(dir, file), 'utf8'), WARMUP);
    const perRun = (us: number): string => (us / runs / 1000).toFixed(3);
    const total = events.reduce((a, e) => a + e.us, 0);
    process.stdout.write(`${model}: ${perRun(total)} ms a run in kernels (${runs} runs after ${WARMUP} warm-up runs, ${threads} thread(s), profiler on)\n\n`);
    process.stdout.write('| operator | ms a run | share |\n|---|---:|---:|\n');
    for (const [op, us] of [...sum(events, (e) => e.op)].sort((a, b) => b[1] - a[1])) {
      process.stdout.write(`| ${op} | ${perRun(us)} | ${((100 * us) / total).toFixed(1)} % |\n`);
    }
    const shapes = new Map(events.map((e) => [e.node, `${e.op} ${e.shape}`]));
    process.stdout.write(`\n| node (the ${top} slowest) | ms a run | operator and output |\n|---|---:|---|\n`);
    for (const [node, us] of [...sum(events, (e) => e.node)].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`| ${node} | ${perRun(us)} | ${shapes.get(node) ?? ''} |\n`);
    }
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then((c) => process.exit(c), (err: unknown) => {
  process.stderr.write(`render-profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
