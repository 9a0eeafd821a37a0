/** A werift caller (server/src/bench/rtc-client.ts) that keeps sending driving frames until closed. */
import { BLENDSHAPE_COUNT } from '../../shared/src/blendshapes.js';
import { encodeDrivingFrame } from '../../shared/src/wire.js';
import { RtcClient } from '../../server/src/bench/rtc-client.js';
import { sleep, waitFor } from './wait.js';

export class DrivingCaller {
  private seq = 1;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly client: RtcClient,
    periodMs: number,
  ) {
    this.timer = setInterval(() => {
      try {
        client.send(
          encodeDrivingFrame({ seq: this.seq++, captureMs: this.seq * periodMs, faceFound: true, pose: new Float32Array(6), gaze: new Float32Array(2), blendshapes: new Float32Array(BLENDSHAPE_COUNT).fill((this.seq % 10) / 10) }),
        );
      } catch {
        // the channel closed: the session ended
      }
    }, periodMs);
  }

  /** Joins `avatar`, starts driving every `periodMs` and waits for the first three decoded frames. */
  static async open(url: string, avatar: string, periodMs: number, connectTimeoutMs = 20_000): Promise<DrivingCaller> {
    const c = new DrivingCaller(await RtcClient.connect({ url, avatar, timeoutMs: connectTimeoutMs }), periodMs);
    try {
      await waitFor(`frames from ${avatar}`, () => c.client.stats.framesDecoded >= 3, 30_000);
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  get failed(): boolean {
    return this.client.sessionErrorCodes.length > 0;
  }

  /** Still streaming: more frames decode (within 10 s, generous for a loaded machine). */
  async streaming(): Promise<boolean> {
    const n = this.client.stats.framesDecoded;
    for (let i = 0; i < 400; i++) {
      if (this.client.stats.framesDecoded >= n + 3 && !this.failed) return true;
      await sleep(25);
    }
    return false;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.client.close();
  }
}
