/**
 * Fixtures for the `dnp eval` tests: a deliberately broken avatar (an ONNX graph whose output is a constant
 * grey picture, whatever the input), a dataset turned back into version 1 (no landmarks), and the eval CLI
 * as a child process.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PYTHON, REPO_ROOT } from './test-avatar.js';

const run = promisify(execFile);

const CONSTANT_GRAPH = `
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
out, size, value = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cond = helper.make_tensor_value_info("cond", TensorProto.FLOAT, ["batch", 60])
rgb = helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 3, size, size])
init = [numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
        numpy_helper.from_array(np.full((1, 3, size, size), value, np.float32), "picture"),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "uaxes")]
nodes = [helper.make_node("Mul", ["cond", "zero"], ["z"]),
         helper.make_node("ReduceSum", ["z", "axes"], ["s"], keepdims=1),
         helper.make_node("Unsqueeze", ["s", "uaxes"], ["s4"]),
         helper.make_node("Add", ["s4", "picture"], ["rgb"])]
model = helper.make_model(helper.make_graph(nodes, "constant", [cond], [rgb], init), opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(model)
onnx.save(model, out)
`;

/**
 * A copy of the avatar folder `like` whose avatar.onnx always renders the same grey picture (`value` in
 * 0..1): a model that ignores its driving input, for "a broken avatar scores worse than a baseline".
 */
export async function makeConstantAvatar(like: string, dir: string, size: number, value = 0.5): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(like, 'avatar.json'), 'utf8')) as { name: string };
  manifest.name = 'constant grey';
  writeFileSync(join(dir, 'avatar.json'), JSON.stringify(manifest, null, 2));
  await run(PYTHON, ['-c', CONSTANT_GRAPH, join(dir, 'avatar.onnx'), String(size), String(value)], { cwd: REPO_ROOT });
}

/** Copies a v2 dataset to `dir` as a version 1 dataset (landmarks.npy and its manifest entry removed). */
export function copyAsVersion1(v2: string, dir: string): void {
  cpSync(v2, dir, { recursive: true });
  rmSync(join(dir, 'landmarks.npy'));
  const m = JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8')) as { version: number; arrays: Record<string, unknown> };
  m.version = 1;
  delete m.arrays.landmarks;
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify(m, null, 2));
}

export interface EvalCliResult {
  code: number | null;
  stderr: string;
  stdout: string;
}

/** Runs `node bin/dnp.js eval ARGS`. */
export function runEvalCli(args: string[]): Promise<EvalCliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'dnp.js'), 'eval', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, stdout }));
  });
}
