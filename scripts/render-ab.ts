// Two avatar models timed against each other, interleaved run by run in one process, so that the machine's own
// drift (CPU frequency, other jobs: 10-30 % between minutes on the development machine) falls on both alike.
// The server's session options (onnxruntime-node on the CPU, `threads` intra-op threads, graph optimisation
// 'all', sequential); the same input for both: the model's normalised conditioning at the mean ± half a standard
// deviation (0.5 sin(0.7 i) for value i), a face near the avatar's usual pose and expression.
// Prints ms a frame (median, p10, p90, min) for each and the median of the per-pair differences B − A.
// Run: npx tsx scripts/render-ab.ts A_DIR_OR_ONNX B_DIR_OR_ONNX [--runs 300] [--batch 1] [--threads 1]
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { quantile as q } from '../server/src/bench/stats.js';
import { parseCommandLine, UsageError, valueOptions } from '../server/src/cli/args.js';

const USAGE = 'usage: npx tsx scripts/render-ab.ts A B [--runs 300] [--batch 1] [--threads 1]   (A, B: avatar folders or .onnx files)';

function modelPath(p: string): string {
  if (existsSync(p) && statSync(p).isDirectory()) return join(p, 'avatar.onnx');
  if (!existsSync(p)) throw new UsageError(`${p}: no such file or folder`);
  return p;
}

async function main(): Promise<number> {
  const cl = parseCommandLine(process.argv.slice(2), valueOptions('runs', 'batch', 'threads'), { maxPositionals: 2 });
  if (cl.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cl.positionals.length !== 2) throw new UsageError('two models to compare are needed (see --help)');
  const runs = cl.int('runs', 10, 100_000, 300);
  const batch = cl.int('batch', 1, 64, 1);
  const threads = cl.int('threads', 1, 64, 1);
  const [a, b] = cl.positionals.map(modelPath) as [string, string];
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1, intraOpNumThreads: threads };
  const sessions = [await ort.InferenceSession.create(a, opts), await ort.InferenceSession.create(b, opts)];
  const cond = Float32Array.from({ length: 60 * batch }, (_, i) => 0.5 * Math.sin(0.7 * i));
  const input = new ort.Tensor('float32', cond, [batch, 60]);
  for (let i = 0; i < 10; i++) for (const s of sessions) await s.run({ cond: input });
  const ms: [number[], number[]] = [[], []];
  for (let i = 0; i < runs; i++) {
    for (const k of i % 2 ? [0, 1] : [1, 0]) {
      const t0 = performance.now();
      await sessions[k]!.run({ cond: input });
      ms[k]!.push((performance.now() - t0) / batch);
    }
  }
  for (const [k, path] of [a, b].entries()) {
    const t = ms[k as 0 | 1];
    process.stdout.write(`${k ? 'B' : 'A'} ${path}: ms a frame median ${q(t, 0.5).toFixed(2)}, p10 ${q(t, 0.1).toFixed(2)}, p90 ${q(t, 0.9).toFixed(2)}, min ${q(t, 0).toFixed(2)}\n`);
  }
  const diff = ms[1].map((v, i) => v - (ms[0][i] ?? NaN));
  process.stdout.write(`B − A: median ${q(diff, 0.5).toFixed(2)} ms a frame (p10 ${q(diff, 0.1).toFixed(2)}, p90 ${q(diff, 0.9).toFixed(2)}), batch ${batch}, ${runs} runs each, ${threads} thread(s)\n`);
  await Promise.all(sessions.map((s) => s.release()));
  return 0;
}

main().then((c) => process.exit(c), (err: unknown) => {
  process.stderr.write(`render-ab: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
