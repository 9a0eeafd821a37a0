// `dnp prepare` refuses bad inputs with a clear message and a non-zero exit, and leaves neither a dataset
// nor a temporary folder behind; Ctrl-C (SIGINT) mid-run also cleans up. Runs the real CLI
// (`node bin/dnp.js prepare …`) as a child process; test inputs are generated into a temporary folder.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA, MODEL, ensureClientBuilt, runPrepareCli, writeTestVideo } from './support/prepare-helpers.js';

let tmp: string;
let outParent: string;
beforeAll(() => {
  ensureClientBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'dnp-prepare-bad-'));
  outParent = join(tmp, 'out');
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A Y4M (raw yuv420p) video of moving colour bars and a checkerboard: decodable, but no face. */
function writePatternY4m(path: string, seconds: number, fps = 30, w = 320, h = 240): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `YUV4MPEG2 W${w} H${h} F${fps}:1 Ip A1:1 C420jpeg\n`);
    const frame = Buffer.alloc(w * h * 3 / 2);
    for (let i = 0; i < seconds * fps; i++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) frame[y * w + x] = ((x + 4 * i) >> 4 & 1) ^ (y >> 4 & 1) ? 200 : 40;
      }
      const u = w * h;
      const q = (w / 2) * (h / 2);
      for (let k = 0; k < q; k++) {
        frame[u + k] = ((k % (w / 2)) * 2 + i) & 0xff;
        frame[u + q + k] = (Math.floor(k / (w / 2)) * 2) & 0xff;
      }
      writeSync(fd, 'FRAME\n');
      writeSync(fd, frame);
    }
  } finally {
    closeSync(fd);
  }
}

async function expectRefused(input: string, message: RegExp, extra: string[] = []): Promise<void> {
  rmSync(outParent, { recursive: true, force: true });
  // the dataset folder's parent exists (a temporary folder would be created there) and is empty
  writeFileSync(join(tmp, 'marker'), '');
  const parentBefore = readdirSync(tmp).sort();
  const out = join(tmp, 'dataset');
  const r = await runPrepareCli([input, '--out', out, '--tracker-model', MODEL, ...extra]);
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toMatch(message);
  expect(readdirSync(tmp).sort()).toEqual(parentBefore); // no dataset, no .dataset.partial-* folder
}

describe('dnp prepare refuses bad inputs', () => {
  it('a text file named .mp4', async () => {
    const f = join(tmp, 'notes.mp4');
    writeFileSync(f, 'this is a shopping list, not a video\n'.repeat(20));
    await expectRefused(f, /dnp prepare: cannot read .*notes\.mp4 as a video .*not a video file, or a damaged or truncated one/);
  });

  it('a truncated video', async () => {
    const f = join(tmp, 'truncated.mp4');
    writeFileSync(f, readFileSync(join(DATA, 'portrait-man-talking.mp4')).subarray(0, 600_000));
    await expectRefused(f, /dnp prepare: cannot read .*truncated\.mp4 as a video/);
  });

  it('an audio-only file', async () => {
    await expectRefused(join(DATA, 'speech-english-16k.wav'), /dnp prepare: .*speech-english-16k\.wav has no video stream \(it holds only audio\)/);
  });

  it('a video with no face', async () => {
    const f = join(tmp, 'pattern.y4m');
    writePatternY4m(f, 2.5);
    await expectRefused(f, /dnp prepare: no face found in any of the 75 frames of .*pattern\.y4m/);
  });

  it('a clip too short to train on', async () => {
    // known before tracking
    await expectRefused(join(DATA, 'portrait-man-talking.mp4'), /only 1\.00 s of video to use; at least 2 s with a face are needed/, ['--max-seconds', '1']);
    // found by tracking: a face in frames 70-89 only
    const f = join(tmp, 'mostly-blank.mp4');
    await writeTestVideo(join(DATA, 'portrait-man-talking.mp4'), f, { seconds: 3, blank: (i) => i < 70 });
    await expectRefused(f, /only 0\.67 s of usable frames \(a face in 20 of 90 frames\); at least 2 s are needed to train/);
  });

  it('a missing file, a missing model, bad options', async () => {
    await expectRefused(join(tmp, 'nope.mp4'), /nope\.mp4: no such file/);
    const r = await runPrepareCli([join(DATA, 'portrait-man-talking.mp4'), '--out', join(tmp, 'x')], { env: { DNP_TRACKER_MODEL: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no FaceLandmarker model configured: pass --tracker-model PATH or set DNP_TRACKER_MODEL/);
    const s = await runPrepareCli([join(DATA, 'portrait-man-talking.mp4'), '--out', join(tmp, 'x'), '--size', '300', '--tracker-model', MODEL]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--size: 300 is not one of 256, 512, 1024/);
    expect(readdirSync(tmp)).not.toContain('x');
  });
});

describe('dnp prepare interrupted', () => {
  it('SIGINT while tracking: exit 130, nothing left behind', async () => {
    const before = readdirSync(tmp).sort();
    const out = join(tmp, 'interrupted');
    let sent = false;
    const r = await runPrepareCli([join(DATA, 'portrait-man-talking.mp4'), '--out', out, '--tracker-model', MODEL], {
      onStderr: (text, kill) => {
        if (!sent && /tracking .* ([1-9]\d)\/\d+ frames/.test(text)) {
          sent = true;
          kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.stderr).toContain('SIGINT: stopping');
    expect(r.code).toBe(130);
    expect(readdirSync(tmp).sort()).toEqual(before);
  });
});
