/**
 * Lip-sync start for one remote tile: brings the voice close to the avatar's lips in one or two steps instead of
 * leaving it all to the browser's own A/V sync.
 *
 * Why: the server sends a participant's voice as it arrives but their avatar only after the render and encode, so
 * a tile starts with the voice ahead of the lips by the server's face delay (plus the video's own receive path).
 * Chrome's synchroniser (webrtc StreamSynchronization, once a second) moves the delays by half of a 4-sample
 * average of the gap that restarts after every move, i.e. about 1/8 of the gap per second (at most 80 ms): from
 * 200 ms it needs ~10 s to get within 40 ms, from a second ~25 s.
 *
 * What: from the tile's measured A/V offset (voice playout minus video playout, both on the sender reports' clock)
 * it sets the voice receiver's `jitterBufferTarget` (Chrome ≥ 114; `playoutDelayHint` in seconds before) to the
 * delay the voice needs: its recent jitter-buffer delay (else the last target, else 0) plus the offset, clamped to
 * 0..MAX_TARGET_MS. It acts on the median of SAMPLES offsets (one a second from the page's stats) taken since its
 * last step, so the estimates have caught up with that step and one frozen or late frame does not count, and only
 * when that median is outside ±MIN_STEP_MS; inside, Chrome's sync keeps the rest (and adds video delay when the
 * voice is behind with no voice delay left to remove). Non-finite or absurd offsets (beyond ±MAX_OFFSET_MS: a
 * clock error, not a delay) are ignored.
 */

export const MIN_STEP_MS = 40;
export const SAMPLES = 3;
/** The spec's upper bound of jitterBufferTarget. */
export const MAX_TARGET_MS = 4_000;
export const MAX_OFFSET_MS = 5_000;

/** The part of RTCRtpReceiver this sets (absent members: an older browser). */
export interface DelayableReceiver {
  jitterBufferTarget?: number | null;
  playoutDelayHint?: number | null;
}

export interface LipSyncInput {
  /** voice playout minus video playout, ms (+: the voice is ahead) */
  avOffsetMs: number | null;
  /** the voice's mean jitter-buffer delay since the last sample, ms */
  audioJitterBufferRecentMs: number | null;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export class LipSyncStart {
  #targetMs: number | null = null;
  #steps = 0;
  readonly #offsets: number[] = [];

  constructor(private readonly receiver: DelayableReceiver | null) {}

  /** The voice delay set (ms), null before the first step. */
  get targetMs(): number | null {
    return this.#targetMs;
  }

  get steps(): number {
    return this.#steps;
  }

  /** Takes one sample; sets the voice receiver's delay when a step is due. Returns the target set, or null. */
  update(s: LipSyncInput): number | null {
    const off = s.avOffsetMs;
    if (off === null || !Number.isFinite(off) || Math.abs(off) > MAX_OFFSET_MS) return null;
    this.#offsets.push(off);
    if (this.#offsets.length < SAMPLES) return null;
    if (this.#offsets.length > SAMPLES) this.#offsets.shift();
    const gap = median(this.#offsets);
    if (Math.abs(gap) < MIN_STEP_MS) return null;
    const jb = s.audioJitterBufferRecentMs;
    const base = jb !== null && Number.isFinite(jb) && jb >= 0 ? jb : (this.#targetMs ?? 0);
    const target = Math.round(Math.min(MAX_TARGET_MS, Math.max(0, base + gap)));
    this.#offsets.length = 0; // the next step waits for SAMPLES offsets measured after this one
    if (target === this.#targetMs || !this.receiver) return null;
    try {
      if ('jitterBufferTarget' in this.receiver) this.receiver.jitterBufferTarget = target;
      else this.receiver.playoutDelayHint = target / 1000;
    } catch {
      return null; // the browser refused the value: leave the sync to it
    }
    this.#targetMs = target;
    this.#steps++;
    return target;
  }
}
