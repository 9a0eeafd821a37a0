/** BitrateController on feedback sequences (time is an argument: no clocks). */
import { describe, expect, it } from 'vitest';
import { BitrateController } from '../server/src/stream/bitrate-controller.js';

const opts = { minBps: 150_000, maxBps: 1_000_000, startBps: 600_000 };

/** Feeds `fb` from every receiver once a second for `seconds`, calling update each time; returns the targets. */
function run(c: BitrateController, t0: number, seconds: number, fb: Record<string, { fractionLost?: number; rembBps?: number }>): { t: number; targets: number[] } {
  const targets: number[] = [];
  let t = t0;
  for (let s = 0; s < seconds; s++) {
    t += 1000;
    for (const [id, f] of Object.entries(fb)) c.feedback(id, f, t);
    c.update(t);
    targets.push(c.target);
  }
  return { t, targets };
}

describe('BitrateController', () => {
  it('clean receivers: the target rises slowly to the maximum and stays', () => {
    const c = new BitrateController(opts);
    const { targets } = run(c, 0, 40, { a: { fractionLost: 0 }, b: { fractionLost: 0.01 } });
    expect(targets[0]).toBe(600_000); // +5 %/s: no change of >= 10 % after one second
    expect(targets[3]).toBeGreaterThan(600_000);
    for (let i = 1; i < targets.length; i++) expect(targets[i] as number).toBeGreaterThanOrEqual(targets[i - 1] as number);
    expect(targets[targets.length - 1]).toBe(1_000_000);
  });

  it('a congested receiver lowers the shared target quickly; it recovers only after the loss stops, slowly', () => {
    const c = new BitrateController(opts);
    let r = run(c, 0, 6, { a: { fractionLost: 0 }, b: { fractionLost: 0.3 } });
    expect(r.targets[0]).toBeLessThan(600_000 * 0.9); // first report: -15 %
    expect(r.targets[5]).toBeLessThan(300_000);
    const low = r.targets[5] as number;
    // loss gone: held for 4 s, then +5 %/s at most
    r = run(c, r.t, 12, { a: { fractionLost: 0 }, b: { fractionLost: 0 } });
    for (const t of r.targets.slice(0, 4)) expect(t).toBeLessThanOrEqual(low); // held
    for (let i = 1; i < r.targets.length; i++) expect((r.targets[i] as number) / (r.targets[i - 1] as number)).toBeLessThanOrEqual(1.05 ** 2 + 1e-4); // rounding to whole bit/s
    expect(r.targets[11]).toBeGreaterThan(low);
  });

  it('never goes below the floor, however bad one receiver is', () => {
    const c = new BitrateController(opts);
    const { targets } = run(c, 0, 30, { a: { fractionLost: 0 }, bad: { fractionLost: 0.9 } });
    expect(Math.min(...targets)).toBe(150_000);
  });

  it('moderate loss (between 2 and 10 %) holds the target', () => {
    const c = new BitrateController(opts);
    const { targets } = run(c, 0, 20, { a: { fractionLost: 0.05 } });
    expect(new Set(targets)).toEqual(new Set([600_000]));
  });

  it('REMB caps the target at the lowest announced estimate', () => {
    const c = new BitrateController(opts);
    const { t, targets } = run(c, 0, 3, { a: { rembBps: 2_000_000, fractionLost: 0 }, b: { rembBps: 300_000, fractionLost: 0 } });
    expect(targets[targets.length - 1]).toBe(300_000);
    // receiver b leaves (times out after 10 s): a alone, clean, climbs again
    const r = run(c, t, 30, { a: { rembBps: 2_000_000, fractionLost: 0 } });
    expect(r.targets[r.targets.length - 1]).toBe(1_000_000);
  });

  it('changes at most every 2 s and only by >= 10 %', () => {
    const c = new BitrateController(opts);
    c.feedback('a', { fractionLost: 0.5 }, 1000);
    expect(c.update(1000)).toBe(450_000);
    c.feedback('a', { fractionLost: 0.5 }, 1500);
    expect(c.update(1500)).toBeNull(); // too soon
    expect(c.update(3000)).toBe(337_500); // 450k x 0.75
    expect(c.changes).toBe(2);
    c.removeReceiver('a');
    expect(c.update(10_000)).toBeNull(); // nobody left: keep what we have
    expect(() => new BitrateController({ minBps: 0, maxBps: 1, startBps: 1 })).toThrow();
  });
});
