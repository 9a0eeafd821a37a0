/**
 * Lip sync for one remote tile: brings the voice back to the avatar's lips in one step instead of leaving it all
 * to the browser's own A/V sync.
 *
 * Why: the server sends a participant's voice as it arrives but their avatar only after the render and encode, so
 * a tile starts with the voice ahead of the lips by the server's face delay (plus the video's own receive path).
 * Chrome's synchroniser (webrtc StreamSynchronization, once a second) moves the delays by half of a 4-sample
 * average of the gap that restarts after every move, i.e. about 1/8 of the gap per second (at most 80 ms): from
 * 200 ms it needs ~10 s to get within 40 ms, from a second ~25 s.
 *
 * What: from the tile's measured A/V offset (voice playout minus video playout, both on the sender reports' clock)
 * it sets the voice receiver's `jitterBufferTarget` (Chrome ≥ 114; `playoutDelayHint`, in seconds, before). The
 * voice ahead by g ms: the target becomes the voice's recent jitter-buffer delay plus g. The voice behind: it only
 * takes back voice delay it added (the target goes down by g, to 0 at least); when the voice's buffer sits above
 * the target (by more than HOLD_MS: the browser holds it for jitter, e.g. a busy server relaying in bursts) the
 * target goes to 0 at once, as it does nothing then. Delaying the video is left to Chrome: a voice behind the lips
 * on this path comes from jitter, which passes, and chasing it with video delay added up to a second of latency on
 * a loaded machine. Targets are clamped to 0..MAX_TARGET_MS.
 *
 * When: only on SAMPLES offsets in a row (one a second from the page's stats) taken since its last step, all on
 * the same side, outside ±MIN_STEP_MS and within SPREAD_MS of each other, by their median: a steady gap, measured
 * after the estimates caught up with the last step. A late frame, a stalled machine or a low frame rate (the
 * video's playout time moves in steps of a frame) make the offsets jump; those, and whatever is inside the band,
 * are Chrome's. Non-finite or absurd offsets (beyond ±MAX_OFFSET_MS: a clock error, not a delay) are ignored.
 */

export const MIN_STEP_MS = 40;
export const SAMPLES = 3;
export const SPREAD_MS = 80;
export const HOLD_MS = 30;
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

const usable = (ms: number | null): ms is number => ms !== null && Number.isFinite(ms) && ms >= 0;

export class LipSync {
  #targetMs: number | null = null;
  #steps = 0;
  readonly #offsets: number[] = [];

  constructor(private readonly voice: DelayableReceiver | null) {}

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
    if (this.#offsets.length > SAMPLES) this.#offsets.shift();
    if (this.#offsets.length < SAMPLES) return null;
    const ahead = this.#offsets.every((o) => o >= MIN_STEP_MS);
    if (!ahead && !this.#offsets.every((o) => o <= -MIN_STEP_MS)) return null;
    if (Math.max(...this.#offsets) - Math.min(...this.#offsets) > SPREAD_MS) return null;
    const gap = median(this.#offsets);
    this.#offsets.length = 0; // the next step waits for SAMPLES offsets measured after this one
    const jb = s.audioJitterBufferRecentMs;
    const set = this.#targetMs ?? 0;
    let target: number;
    if (ahead) target = (usable(jb) ? jb : set) + gap;
    else if (usable(jb) && jb > set + HOLD_MS) target = 0;
    else target = set + gap;
    target = Math.round(Math.min(MAX_TARGET_MS, Math.max(0, target)));
    if (!this.voice || target === set) return null;
    try {
      if ('jitterBufferTarget' in this.voice) this.voice.jitterBufferTarget = target;
      else this.voice.playoutDelayHint = target / 1000;
    } catch {
      return null; // the browser refused the value: leave the sync to it
    }
    this.#targetMs = target;
    this.#steps++;
    return target;
  }
}
