/** The page's DOM: looks up the elements once (index.html) and renders state, messages and stats. */
import type { AvatarSummary, DriveMode } from '../../shared/src/signaling.js';
import { formatFps, formatKbps, formatMs, type LiveStats } from './stats/live-stats.js';

/** The folder name of the avatar that ships with the project (avatars/default). */
const DEFAULT_AVATAR_ID = 'default';

function el<T extends HTMLElement>(id: string, type: new () => T): T {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`page is missing #${id}`);
  return e;
}

export class View {
  readonly avatar = el('avatar', HTMLSelectElement);
  readonly codec = el('codec', HTMLSelectElement);
  readonly mode = el('mode', HTMLSelectElement);
  readonly start = el('start', HTMLButtonElement);
  readonly stop = el('stop', HTMLButtonElement);
  readonly calibrate = el('calibrate', HTMLButtonElement);
  readonly remote = el('remote', HTMLVideoElement);
  readonly preview = el('preview', HTMLVideoElement);
  readonly #state = el('state', HTMLSpanElement);
  readonly #message = el('message', HTMLDivElement);
  readonly #placeholder = el('placeholder', HTMLDivElement);
  readonly #cells = {
    fps: el('s-fps', HTMLElement),
    latency: el('s-latency', HTMLElement),
    render: el('s-render', HTMLElement),
    up: el('s-up', HTMLElement),
    down: el('s-down', HTMLElement),
    tracking: el('s-tracking', HTMLElement),
    camera: el('s-camera', HTMLElement),
    sent: el('s-sent', HTMLElement),
    calibration: el('s-calibration', HTMLElement),
    lips: el('s-lips', HTMLElement),
    av: el('s-av', HTMLElement),
  };

  /** The chosen drive mode (camera when the select holds anything else). */
  driveMode(): DriveMode {
    const v = this.mode.value;
    return v === 'microphone' || v === 'both' ? v : 'camera';
  }

  setAvatars(list: readonly AvatarSummary[]): void {
    this.avatar.replaceChildren(
      ...list.map((a) => {
        const o = document.createElement('option');
        o.value = a.id;
        const label = `${a.name || a.id} (${a.width}×${a.height}, ${a.fps} fps)`;
        o.textContent = a.driving === 'expression' ? label : `${label}: audio-driven, not drivable from this page`;
        o.disabled = a.driving !== 'expression';
        return o;
      }),
    );
    // the shipped default avatar is preselected when present, else the first drivable one
    const first = list.find((a) => a.id === DEFAULT_AVATAR_ID && a.driving === 'expression') ?? list.find((a) => a.driving === 'expression');
    if (first) this.avatar.value = first.id;
    this.avatar.disabled = list.length === 0;
  }

  setState(state: string, running: boolean, canStart: boolean, canCalibrate: boolean): void {
    this.#state.textContent = state;
    this.#state.dataset.state = state;
    this.start.disabled = running || !canStart;
    this.stop.disabled = !running;
    this.calibrate.disabled = !canCalibrate;
    this.avatar.disabled = running || this.avatar.options.length === 0;
    this.codec.disabled = running;
    this.mode.disabled = running;
    // the caller hears their own voice back (in sync with the avatar's lips) only in the voice modes
    this.remote.muted = this.driveMode() === 'camera';
    this.preview.hidden = this.driveMode() === 'microphone'; // no camera in microphone-only mode
  }

  showMessage(kind: 'error' | 'info', text: string): void {
    this.#message.textContent = text;
    this.#message.dataset.kind = kind;
    this.#message.hidden = false;
  }

  clearMessage(): void {
    this.#message.textContent = '';
    this.#message.hidden = true;
  }

  setPlaceholder(text: string | null): void {
    this.#placeholder.textContent = text ?? '';
    this.#placeholder.hidden = text === null;
  }

  renderStats(s: LiveStats): void {
    const c = this.#cells;
    c.fps.textContent = s.framesPresented > 0 || s.framesDecoded > 0 ? `${formatFps(s.presentedFps)} shown, ${formatFps(s.decodedFps)} decoded` : '–';
    c.latency.textContent = formatMs(s.latencyMs);
    c.render.textContent = s.renderMs.count > 0 ? `${s.renderMs.median.toFixed(1)} / ${s.encodeMs.median.toFixed(1)} ms` : '–';
    c.up.textContent = s.framesSent > 0 || s.audioPacketsSent > 0 ? formatKbps(s.uplinkKbps) : '–';
    c.down.textContent = s.framesDecoded > 0 ? formatKbps(s.downlinkKbps) : '–';
    c.tracking.textContent = s.trackingMs.count > 0 ? `${s.trackingMs.median.toFixed(1)} ms (p90 ${s.trackingMs.p90.toFixed(1)})` : '–';
    const facePct = s.cameraFrames > 0 ? Math.round((100 * s.facesFound) / s.cameraFrames) : 0;
    c.camera.textContent = s.cameraFrames > 0 ? `${formatFps(s.cameraFps)}, face in ${facePct}%` : '–';
    c.sent.textContent = s.framesSent > 0 || s.framesSkipped > 0 ? `${s.framesSent} (${s.framesSkipped} skipped)` : '–';
    c.calibration.textContent = s.calibration;
    const ms = (x: number | null): string => (x === null ? '–' : `${x.toFixed(0)} ms`);
    c.lips.textContent = s.mode === 'camera' ? 'camera mode' : `${ms(s.speechToLipsMs)}${s.speech ? ' (speaking)' : ''}`;
    c.av.textContent = s.mode === 'camera' ? '–' : s.avOffsetMs === null ? '–' : `${s.avOffsetMs >= 0 ? '+' : ''}${s.avOffsetMs.toFixed(0)} ms`;
  }
}
