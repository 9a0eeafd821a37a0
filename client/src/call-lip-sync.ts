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
 * it sets the receivers' `jitterBufferTarget` (Chrome ≥ 114; `playoutDelayHint`, in seconds, before): the voice
 * ahead by g ms first takes back video delay it added, then sets the voice's target to its recent jitter-buffer
 * delay plus the rest; the voice behind first takes back voice delay, then delays the video the same way. So at
 * most one of the two carries a target above 0: delay on both sides would only add latency. Delay it added only
 * counts as removed while that receiver's buffer sits at the target (within HOLD_MS): a buffer above it is held by
 * the browser for its own reasons (jitter: a busy server relays in bursts), so the target goes to 0 (it does
 * nothing then) and the whole gap goes to the other side. Targets
 * are clamped to 0..MAX_TARGET_MS. It acts only on SAMPLES offsets in a row (one a second from the page's stats)
 * taken since its last step, all on the same side, outside ±MIN_STEP_MS and within SPREAD_MS of each other, by
 * their median: a steady gap, measured after the estimates caught up with the last step. A frozen or late frame,
 * a stalled machine or a low frame rate (the video's playout time moves in steps of a frame) make the offsets
 * jump: chasing those would only add delay, so it leaves them, and whatever is inside the band, to Chrome's sync. Non-finite or absurd offsets (beyond ±MAX_OFFSET_MS: a clock
 * error, not a delay) are ignored.
 */

export const MIN_STEP_MS = 40;
export const SAMPLES = 3;
/** The spec's upper bound of jitterBufferTarget. */
export const MAX_TARGET_MS = 4_000;
export const MAX_OFFSET_MS = 5_000;
export const HOLD_MS = 30;
export const SPREAD_MS = 80;

/** The part of RTCRtpReceiver this sets (absent members: an older browser). */
export interface DelayableReceiver {
  jitterBufferTarget?: number | null;
  playoutDelayHint?: number | null;
}

export interface LipSyncInput {
  /** voice playout minus video playout, ms (+: the voice is ahead) */
  avOffsetMs: number | null;
  /** the voice's and the video's mean jitter-buffer delay since the last sample, ms */
  audioJitterBufferRecentMs: number | null;
  videoJitterBufferRecentMs: number | null;
}

export interface LipSyncTargets {
  /** the delay set on the voice / the video receiver (ms), null: never set */
  audioMs: number | null;
  videoMs: number | null;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const clampTarget = (ms: number): number => Math.round(Math.min(MAX_TARGET_MS, Math.max(0, ms)));
const usable = (ms: number | null): ms is number => ms !== null && Number.isFinite(ms) && ms >= 0;

/** Sets one receiver's delay (ms); false when the browser refused it. */
function setDelay(rx: DelayableReceiver, ms: number): boolean {
  try {
    if ('jitterBufferTarget' in rx) rx.jitterBufferTarget = ms;
    else rx.playoutDelayHint = ms / 1000;
    return true;
  } catch {
    return false;
  }
}

export class LipSync {
  readonly #targets: LipSyncTargets = { audioMs: null, videoMs: null };
  #steps = 0;
  readonly #offsets: number[] = [];

  constructor(private readonly receivers: { audio: DelayableReceiver | null; video: DelayableReceiver | null }) {}

  get targets(): Readonly<LipSyncTargets> {
    return this.#targets;
  }

  get steps(): number {
    return this.#steps;
  }

  /** Takes one sample; sets the receivers' delays when a step is due. Returns the targets after a step, else null. */
  update(s: LipSyncInput): Readonly<LipSyncTargets> | null {
    const off = s.avOffsetMs;
    if (off === null || !Number.isFinite(off) || Math.abs(off) > MAX_OFFSET_MS) return null;
    this.#offsets.push(off);
    if (this.#offsets.length > SAMPLES) this.#offsets.shift();
    if (this.#offsets.length < SAMPLES) return null;
    const ahead = this.#offsets.every((o) => o >= MIN_STEP_MS);
    if (!ahead && !this.#offsets.every((o) => o <= -MIN_STEP_MS)) return null;
    if (Math.max(...this.#offsets) - Math.min(...this.#offsets) > SPREAD_MS) return null;
    let rest = Math.abs(median(this.#offsets));
    this.#offsets.length = 0; // the next step waits for SAMPLES offsets measured after this one
    // the voice ahead: less video delay, then more voice delay; behind: the other way round
    const [undo, add] = ahead ? (['video', 'audio'] as const) : (['audio', 'video'] as const);
    const next: LipSyncTargets = { ...this.#targets };
    const added = next[`${undo}Ms`] ?? 0;
    const held = undo === 'audio' ? s.audioJitterBufferRecentMs : s.videoJitterBufferRecentMs;
    if (added > 0 && usable(held) && held > added + HOLD_MS) next[`${undo}Ms`] = 0;
    else if (added > 0) {
      const cut = Math.min(added, rest);
      next[`${undo}Ms`] = clampTarget(added - cut);
      rest -= cut;
    }
    if (rest > 0) {
      const jb = add === 'audio' ? s.audioJitterBufferRecentMs : s.videoJitterBufferRecentMs;
      next[`${add}Ms`] = clampTarget((usable(jb) ? jb : (next[`${add}Ms`] ?? 0)) + rest);
    }
    let changed = false;
    for (const kind of ['audio', 'video'] as const) {
      const ms = next[`${kind}Ms`];
      const rx = this.receivers[kind];
      if (ms === null || ms === this.#targets[`${kind}Ms`] || !rx || !setDelay(rx, ms)) continue;
      this.#targets[`${kind}Ms`] = ms;
      changed = true;
    }
    if (!changed) return null;
    this.#steps++;
    return this.#targets;
  }
}
