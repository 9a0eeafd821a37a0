/**
 * Feeds werift room callers (test/support/room-client.ts) like a talking person: every 20 ms an Opus packet of
 * the speech clip (RTP clock in real time), and a recorded driving frame at ~30 Hz (two ticks of three; the
 * capture time is the send time). One owner: stop() (idempotent) ends the loop.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DrivingValues } from '../../shared/src/driving-values.js';
import { mapTrackerFace } from '../../shared/src/tracker-mapping.js';
import { encodeDrivingFrame } from '../../shared/src/wire.js';
import type { RoomClient } from './room-client.js';
import { sleep } from './wait.js';

/** The driving values MediaPipe found in ../shared/data's portrait clip (its tracker reference), in order. */
export function recordedDriving(dataDir: string): DrivingValues[] {
  const ref = JSON.parse(readFileSync(join(dataDir, 'portrait-man-talking.tracker-reference.json'), 'utf8')) as { frames: { faces: number; blendshapes: number[]; matrix: number[] }[] };
  return ref.frames.filter((f) => f.faces > 0).map((f) => mapTrackerFace({ blendshapes: f.blendshapes, matrix: f.matrix }));
}

export class RoomFeeder {
  private running = true;
  private readonly loop: Promise<void>;

  constructor(clients: readonly RoomClient[], driving: readonly DrivingValues[], opus: readonly Buffer[]) {
    if (!driving.length || !opus.length) throw new RangeError('RoomFeeder needs driving frames and Opus packets');
    this.loop = (async () => {
      let tick = 0;
      let seq = 0;
      const t0 = performance.now();
      while (this.running) {
        for (const [i, c] of clients.entries()) {
          c.sendOpus(opus[tick % opus.length] as Buffer, 960 * tick);
          if (tick % 3 !== 2) {
            const v = driving[(tick + i * 37) % driving.length] as DrivingValues;
            c.sendDriving(encodeDrivingFrame({ seq: ++seq, captureMs: Math.floor(performance.now()), faceFound: true, pose: v.pose, gaze: v.gaze, blendshapes: v.blendshapes }));
          }
        }
        tick++;
        const wait = t0 + tick * 20 - performance.now();
        if (wait > 0) await sleep(wait);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
