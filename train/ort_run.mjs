// Runs an ONNX model in onnxruntime-node on raw float32 input and writes the raw output (float32, or uint8 for
// a yuv420p model; its type is printed).
// Used by train/export.py to check the exported file against PyTorch (there is no onnxruntime for Python here).
// Usage: node train/ort_run.mjs MODEL.onnx INPUT_NAME IN.bin D0,D1,... OUT.bin
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, inputName, inPath, dimsArg, outPath] = process.argv.slice(2);
if (!model || !inputName || !inPath || !dimsArg || !outPath) {
  process.stderr.write('usage: node ort_run.mjs MODEL.onnx INPUT_NAME IN.bin D0,D1,... OUT.bin\n');
  process.exit(2);
}
const dims = dimsArg.split(',').map(Number);
if (!dims.every((d) => Number.isInteger(d) && d > 0)) {
  process.stderr.write(`ort_run: D0,D1,... must be positive whole numbers (got ${dimsArg})\n`);
  process.exit(2);
}
const buf = readFileSync(inPath);
const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
try {
  const result = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
  const name = session.outputNames[0];
  const out = name === undefined ? undefined : result[name];
  if (name === undefined || out === undefined) throw new Error(`${model}: the model has no output`);
  const arr = out.data;
  if (!ArrayBuffer.isView(arr)) throw new Error(`${model}: output ${name} is a ${out.type} tensor, not a numeric one`);
  writeFileSync(outPath, Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength));
  process.stdout.write(JSON.stringify({ name, dims: out.dims, type: out.type }) + '\n');
} finally {
  await session.release();
}
