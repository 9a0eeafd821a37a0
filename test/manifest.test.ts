/** Avatar manifest v1 (shared/src/avatar-manifest.ts): a good one parses; each kind of bad one is rejected naming the field. */
import { describe, expect, it } from 'vitest';
import { avatarOutputFormat, normaliseConditioning, parseAvatarManifest } from '../shared/src/avatar-manifest.js';
import { SchemaError } from '../shared/src/json-check.js';
import { servedManifest } from '../server/src/avatars/registry.js';

type J = Record<string, unknown>;

function good(): J {
  return {
    format: 'dnp-avatar',
    version: 1,
    name: 'Test',
    width: 256,
    height: 192,
    fps: 25,
    driving: 'expression',
    model: {
      file: 'avatar.onnx',
      opset: 17,
      inputs: [{ name: 'cond', dtype: 'float32', shape: ['batch', 60] }],
      outputs: [{ name: 'rgb', dtype: 'float32', shape: ['batch', 3, 192, 256] }],
    },
    conditioning: {
      layout: [{ name: 'pose', size: 6 }, { name: 'gaze', size: 2 }, { name: 'blendshapes', size: 52 }],
      mean: new Array(60).fill(0),
      std: new Array(60).fill(1),
    },
    neutral: { pose: [0, 0, 0, 0, 0, -40], gaze: [0, 0], blendshapes: new Array(52).fill(0) },
    training: { preset: 'cpu', untrained: true },
  };
}

/** Applies `edit` to a deep copy of good(). */
function bad(edit: (m: J) => void): J {
  const m = structuredClone(good());
  edit(m);
  return m;
}

const model = (m: J): J => m.model as J;
const cond = (m: J): J => m.conditioning as J;

describe('parseAvatarManifest', () => {
  it('reads the optional output format and precision (absent: rgb, fp32)', () => {
    const plain = parseAvatarManifest(good());
    expect([plain.model.outputFormat, plain.model.precision, avatarOutputFormat(plain)]).toEqual(['rgb', 'fp32', 'rgb']);
    const yuv = parseAvatarManifest(bad((m) => Object.assign(model(m), { outputFormat: 'yuv420p', precision: 'fp16', outputs: [{ name: 'yuv420p', dtype: 'uint8', shape: ['batch', 256 * 192 * 1.5] }] })));
    expect([yuv.model.outputFormat, yuv.model.precision, avatarOutputFormat(yuv)]).toEqual(['yuv420p', 'fp16', 'yuv420p']);
    expect(yuv.model.outputs[0]).toEqual({ name: 'yuv420p', dtype: 'uint8', shape: ['batch', 73728] });
  });

  it('accepts a good manifest and returns its values', () => {
    const m = parseAvatarManifest(good(), 'x/avatar.json');
    expect(m.width).toBe(256);
    expect(m.height).toBe(192);
    expect(m.fps).toBe(25);
    expect(m.model.inputs[0]?.shape).toEqual(['batch', 60]);
    expect(m.model.outputs[0]?.shape).toEqual(['batch', 3, 192, 256]);
    expect(m.neutral.pose[5]).toBe(-40);
    expect(m.training).toEqual({ preset: 'cpu', untrained: true });
  });

  it('accepts a manifest without "training"', () => {
    expect(parseAvatarManifest(bad((m) => delete m.training)).training).toEqual({});
  });

  const cases: Array<[string, unknown, string]> = [
    ['not an object', [], 'avatar.json'],
    ['wrong format', bad((m) => (m.format = 'onnx')), 'format'],
    ['unsupported version', bad((m) => (m.version = 2)), 'version'],
    ['odd width', bad((m) => { m.width = 255; model(m).outputs = [{ name: 'rgb', dtype: 'float32', shape: ['batch', 3, 192, 255] }]; }), 'width/height'],
    ['tiny width', bad((m) => (m.width = 8)), 'width'],
    ['height not a number', bad((m) => (m.height = '192')), 'height'],
    ['fps zero', bad((m) => (m.fps = 0)), 'fps'],
    ['unknown driving', bad((m) => (m.driving = 'video')), 'driving'],
    ['model file with a path', bad((m) => (model(m).file = '../avatar.onnx')), 'model.file'],
    ['old opset', bad((m) => (model(m).opset = 9)), 'model.opset'],
    ['two inputs', bad((m) => (model(m).inputs = [...(model(m).inputs as unknown[]), { name: 'x', dtype: 'float32', shape: ['batch', 1] }])), 'model.inputs'],
    ['fixed batch dimension', bad((m) => (model(m).inputs = [{ name: 'cond', dtype: 'float32', shape: [1, 60] }])), 'model.inputs[0].shape[0]'],
    ['float16 input', bad((m) => (model(m).inputs = [{ name: 'cond', dtype: 'float16', shape: ['batch', 60] }])), 'model.inputs[0].dtype'],
    ['input of rank 3', bad((m) => (model(m).inputs = [{ name: 'cond', dtype: 'float32', shape: ['batch', 60, 1] }])), 'model.inputs[0].shape'],
    ['output size not the avatar size', bad((m) => (model(m).outputs = [{ name: 'rgb', dtype: 'float32', shape: ['batch', 3, 256, 256] }])), 'model.outputs[0].shape'],
    ['output with 4 channels', bad((m) => (model(m).outputs = [{ name: 'rgb', dtype: 'float32', shape: ['batch', 4, 192, 256] }])), 'model.outputs[0].shape'],
    ['empty input name', bad((m) => (model(m).inputs = [{ name: '', dtype: 'float32', shape: ['batch', 60] }])), 'model.inputs[0].name'],
    ['input size not the layout size', bad((m) => (model(m).inputs = [{ name: 'cond', dtype: 'float32', shape: ['batch', 61] }])), 'model.inputs[0].shape[1]'],
    ['expression layout in the wrong order', bad((m) => (cond(m).layout = [{ name: 'gaze', size: 2 }, { name: 'pose', size: 6 }, { name: 'blendshapes', size: 52 }])), 'conditioning.layout'],
    ['mean too short', bad((m) => (cond(m).mean = new Array(59).fill(0))), 'conditioning.mean'],
    ['mean with a string', bad((m) => ((cond(m).mean as unknown[])[3] = 'x')), 'conditioning.mean[3]'],
    ['std zero', bad((m) => ((cond(m).std as number[])[10] = 0)), 'conditioning.std[10]'],
    ['neutral pose of 5', bad((m) => ((m.neutral as J).pose = [0, 0, 0, 0, 0])), 'neutral.pose'],
    ['neutral blendshapes missing', bad((m) => delete (m.neutral as J).blendshapes), 'neutral.blendshapes'],
    ['empty name', bad((m) => (m.name = '')), 'name'],
    ['training not an object', bad((m) => (m.training = 3)), 'training'],
    ['unknown output format', bad((m) => (model(m).outputFormat = 'nv12')), 'model.outputFormat'],
    ['unknown precision', bad((m) => (model(m).precision = 'int4')), 'model.precision'],
    ['yuv420p format with an rgb output', bad((m) => (model(m).outputFormat = 'yuv420p')), 'model.outputs[0].dtype'],
    ['yuv420p output of the wrong size', bad((m) => Object.assign(model(m), { outputFormat: 'yuv420p', outputs: [{ name: 'yuv420p', dtype: 'uint8', shape: ['batch', 256 * 192 * 3] }] })), 'model.outputs[0].shape'],
    ['uint8 output without the yuv420p format', bad((m) => (model(m).outputs = [{ name: 'rgb', dtype: 'uint8', shape: ['batch', 3, 192, 256] }])), 'model.outputs[0].dtype'],
  ];
  for (const [what, value, field] of cases) {
    it(`rejects ${what}, naming ${field}`, () => {
      let error: unknown;
      try {
        parseAvatarManifest(value, 'x/avatar.json');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SchemaError);
      const msg = (error as Error).message;
      expect(msg.startsWith('x/avatar.json')).toBe(true);
      expect(msg).toContain(field);
    });
  }
});

describe('normaliseConditioning', () => {
  const c = { layout: [{ name: 'x', size: 2 }], mean: [1, -2], std: [2, 0.5] };
  it('normalises each vector of a batch by its position in the layout', () => {
    expect(Array.from(normaliseConditioning(c, Float32Array.from([3, -2, 1, -1])))).toEqual([1, 0, 0, 2]);
  });
  it('refuses a batch that is not whole vectors', () => {
    expect(() => normaliseConditioning(c, new Float32Array(3))).toThrow('3 values are not whole vectors of 2');
  });
});

describe('servedManifest (--max-fps)', () => {
  const m = parseAvatarManifest({ ...good(), fps: 30 });
  it('serves an avatar above the cap at the cap, the rest of its manifest unchanged', () => {
    const s = servedManifest(m, { maxFps: 25 });
    expect(s.fps).toBe(25);
    expect({ ...s, fps: 30 }).toEqual(m);
    expect(m.fps).toBe(30); // the manifest read from the folder is not changed
  });
  it('leaves an avatar at or below the cap, or with no cap, as it is', () => {
    expect(servedManifest(m, { maxFps: 30 })).toBe(m);
    expect(servedManifest(m, { maxFps: 60 })).toBe(m);
    expect(servedManifest(m)).toBe(m);
  });
});
