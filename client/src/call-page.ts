/**
 * Call view of the page (`/?room=NAME`, optional `&token=`): the caller picks an avatar and joins room NAME;
 * their camera drives their avatar (tracked here, only driving numbers go up) and their microphone goes up as
 * Opus; every other participant appears as a tile with their avatar, their voice, the "AI-generated video" label
 * and live stats. Own camera preview, Mute, Leave, and the room's shareable link. The single-user view (no
 * ?room) stays the "try your avatar" page. window.dnpCall exposes the state and per-tile stats for tests.
 */
import { io, type Socket } from 'socket.io-client';
import { parseParticipantInfo, parseParticipantLeft, parseRoomJoinReply, parseRoomName, type ParticipantInfo } from '../../shared/src/room-signaling.js';
import { parseSessionError, type ClientToServerEvents, type ServerToClientEvents, type VideoCodecName } from '../../shared/src/signaling.js';
import { parseAvatarList } from './avatars.js';
import { LipSync } from './call-lip-sync.js';
import { CallPeers, type RemotePeer } from './call-peers.js';
import { FrameLoop, openCamera, stopStream } from './camera.js';
import { parseClientConfig, type ClientConfig } from './config.js';
import { DrivingSender } from './driving-sender.js';
import { configUrl, tokenFromSearch } from './page-token.js';
import { readTileStats, tileStatsLine, type CallState, type CallStatsSnapshot, type TileSample } from './stats/call-stats.js';
import { FaceTracker } from './tracking/face-tracker.js';


declare global {
  interface Window {
    dnpCall?: { readonly state: CallState; stats(): Promise<CallStatsSnapshot>; leave(): void };
  }
}

interface Tile {
  info: ParticipantInfo;
  el: HTMLElement;
  video: HTMLVideoElement;
  statsEl: HTMLElement;
  sample: TileSample | null;
  /** sets the voice's delay from the measured A/V offset (call-lip-sync.ts); null with ?lipsync=off */
  lipSync: LipSync | null;
}

const STATS_INTERVAL_MS = 1000;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as unknown;
}

class CallPage {
  state: CallState = 'loading';
  message = '';
  participantId = '';
  #config: ClientConfig | null = null;
  readonly #token = tokenFromSearch(location.search);
  /** `?lipsync=off`: leave the A/V sync entirely to the browser (to compare) */
  readonly #lipSyncStart = new URLSearchParams(location.search).get('lipsync') !== 'off';
  readonly #tiles = new Map<string, Tile>();
  readonly #sender = new DrivingSender();
  #socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
  #peers: CallPeers | null = null;
  #camera: MediaStream | null = null;
  #microphone: MediaStream | null = null;
  #tracker: FaceTracker | null = null;
  #loop: FrameLoop | null = null;
  #statsTimer: ReturnType<typeof setInterval> | null = null;
  #uplink: { bytes: number; at: number; kbps: number } = { bytes: 0, at: 0, kbps: 0 };
  readonly #ui;

  constructor(readonly room: string) {
    const byId = <T extends HTMLElement>(id: string): T | null => document.getElementById(id) as T | null;
    for (const id of ['mode', 'calibrate']) {
      const e = byId(id);
      const box = e?.closest('label') ?? e;
      if (box instanceof HTMLElement) box.style.display = 'none'; // the page's CSS lays labels out: [hidden] alone loses
    }
    const stage = document.querySelector<HTMLElement>('.stage');
    if (stage) stage.style.display = 'none';
    const title = document.querySelector('h1');
    if (title) title.textContent = `dnp-live · call “${room}”`;
    const tagline = document.querySelector('.tagline');
    if (tagline) tagline.textContent = 'A call where everyone appears as their avatar: only pose and expression numbers and your voice leave your browser.';
    const start = byId<HTMLButtonElement>('start');
    const stop = byId<HTMLButtonElement>('stop');
    const avatar = byId<HTMLSelectElement>('avatar');
    const codec = byId<HTMLSelectElement>('codec');
    const stateEl = byId<HTMLElement>('state');
    const messageEl = byId<HTMLElement>('message');
    if (!start || !stop || !avatar || !codec || !stateEl || !messageEl) throw new Error('the page lacks its controls');
    start.textContent = 'Join call';
    stop.textContent = 'Leave';
    const mute = el('button', { type: 'button', id: 'mute', disabled: true, textContent: 'Mute' });
    stop.after(mute);
    const name = el('input', { id: 'call-name', type: 'text', maxLength: 40, value: 'guest', placeholder: 'your name' });
    avatar.closest('label')?.before(el('label', {}, 'Name', name));
    const link = new URL(location.href);
    link.search = `?room=${encodeURIComponent(room)}`;
    const share = el('input', { id: 'call-link', type: 'text', readOnly: true, value: link.href });
    const preview = el('video', { id: 'call-preview', className: 'tile-video', autoplay: true, playsInline: true, muted: true });
    const selfTile = el('div', { className: 'tile self' }, preview, el('span', { className: 'tile-name', textContent: 'You (your camera stays here)' }));
    const tiles = el('div', { className: 'tiles', id: 'tiles' }, selfTile);
    const section = el('section', { className: 'call', ariaLabel: 'Call' }, el('p', { className: 'share' }, 'Share this link to invite: ', share), tiles);
    document.querySelector('main')?.append(section);
    this.#ui = { start, stop, mute, avatar, codec, name, stateEl, messageEl, tiles, preview };
    start.addEventListener('click', () => void this.join());
    stop.addEventListener('click', () => this.leave());
    mute.addEventListener('click', () => this.toggleMute());
    window.addEventListener('pagehide', () => this.leave());
  }

  async init(): Promise<void> {
    try {
      const [config, avatars] = await Promise.all([fetchJson(configUrl(this.#token)), fetchJson('/avatars')]);
      this.#config = parseClientConfig(config);
      const usable = parseAvatarList(avatars).filter((a) => a.driving === 'expression');
      this.#ui.avatar.replaceChildren(...usable.map((a) => el('option', { value: a.id, textContent: `${a.name} (${a.width}×${a.height})` })));
      if (!usable.length) return this.#fail('This server has no expression-driven avatars.');
      this.#setState('idle');
    } catch (e) {
      this.#fail(`Cannot load the server's configuration: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  get muted(): boolean {
    return this.#microphone?.getAudioTracks().every((t) => !t.enabled) ?? true;
  }

  async join(): Promise<void> {
    const config = this.#config;
    if (!config || this.state === 'joining' || this.state === 'in-call') return;
    this.#setState('joining');
    try {
      this.#camera = await openCamera();
      this.#ui.preview.srcObject = this.#camera;
      void this.#ui.preview.play().catch(() => {});
      try {
        this.#microphone = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false });
      } catch {
        this.#microphone = null; // no microphone: the call goes on without a voice
      }
      this.#tracker ??= await FaceTracker.create({ wasmUrl: new URL('wasm', location.href).href.replace(/\/$/, ''), modelUrl: new URL(config.trackerModelUrl, location.href).href });
      const tracker = this.#tracker;
      const preview = this.#ui.preview;
      this.#loop = new FrameLoop(preview, () => {
        const now = performance.now();
        let values = null;
        try {
          values = tracker.detect(preview, now)?.values ?? null;
        } catch {
          values = null;
        }
        this.#sender.send(values, now);
      });
      await this.#connect(config);
      this.#statsTimer = setInterval(() => void this.#pollStats(), STATS_INTERVAL_MS);
      this.#setState('in-call');
    } catch (e) {
      this.#teardown();
      this.#fail(e instanceof Error ? e.message : String(e));
    }
  }

  async #connect(config: ClientConfig): Promise<void> {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({ autoConnect: false, reconnection: false, auth: this.#token ? { token: this.#token } : {} });
    this.#socket = socket;
    const mic = this.#microphone?.getAudioTracks()[0] ?? null;
    let channelOpen: () => void = () => {};
    const opened = new Promise<void>((r) => (channelOpen = r));
    const peers = new CallPeers(socket, config.iceServers, mic, {
      onOwnChannel: (ch) => {
        ch.addEventListener('open', () => channelOpen());
        this.#sender.attach(ch);
      },
      onRemote: (r) => this.#showRemote(r),
      onFailed: (p) => (p === null ? this.#fail('the connection to the server failed') : this.#removeTile(p)),
    });
    this.#peers = peers;
    socket.on('room-offer', (o: unknown) => void peers.answer(o).catch((e: unknown) => this.#fail(`cannot answer the server: ${String(e)}`)));
    socket.on('participant-joined', (v: unknown) => this.#addTile(parseParticipantInfo(v)));
    socket.on('participant-left', (v: unknown) => this.#removeTile(parseParticipantLeft(v).participant));
    socket.on('session-error', (v: unknown) => {
      const err = parseSessionError(v);
      this.#teardown();
      this.#fail(`the server ended the call (${err.code}): ${err.message}`);
    });
    socket.on('shutdown', () => {
      this.#teardown();
      this.#fail('the server is shutting down');
    });
    socket.connect();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (e) => reject(new Error(`cannot reach the server: ${e.message}`)));
    });
    const codec: VideoCodecName = this.#ui.codec.value === 'h264' ? 'h264' : 'vp8';
    const reply = parseRoomJoinReply(await socket.timeout(10_000).emitWithAck('room-join', { room: this.room, avatar: this.#ui.avatar.value, codec, name: this.#ui.name.value.trim() || 'guest' }));
    if (!reply.ok) throw new Error(`the server refused to join (${reply.code}): ${reply.error}`);
    this.participantId = reply.participantId;
    for (const p of reply.participants) this.#addTile(p);
    await Promise.race([opened, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the connection to the server did not come up')), 20_000))]);
  }

  #addTile(info: ParticipantInfo): void {
    if (this.#tiles.has(info.id)) return;
    const video = el('video', { className: 'tile-video', autoplay: true, playsInline: true });
    const statsEl = el('span', { className: 'tile-stats', textContent: 'connecting…' });
    const tileEl = el(
      'div',
      { className: 'tile' },
      video,
      el('span', { className: 'ai-label', title: 'This video is synthesised by a neural network from the participant’s facial movements.', textContent: 'AI-generated video' }),
      el('span', { className: 'tile-name', textContent: info.name }),
      statsEl,
    );
    tileEl.dataset.participant = info.id;
    this.#ui.tiles.append(tileEl);
    this.#tiles.set(info.id, { info, el: tileEl, video, statsEl, sample: null, lipSync: null });
  }

  #showRemote(r: RemotePeer): void {
    const tile = this.#tiles.get(r.participant);
    if (!tile) return;
    if (tile.video.srcObject !== r.stream) tile.video.srcObject = r.stream;
    void tile.video.play().catch(() => {
      tile.video.muted = true; // autoplay with sound refused until the user interacts: play muted
      return tile.video.play();
    });
  }

  #removeTile(id: string): void {
    this.#peers?.drop(id);
    const t = this.#tiles.get(id);
    this.#tiles.delete(id);
    t?.el.remove();
  }

  toggleMute(): void {
    const tracks = this.#microphone?.getAudioTracks() ?? [];
    const mute = !this.muted;
    for (const t of tracks) t.enabled = !mute;
    this.#ui.mute.textContent = mute ? 'Unmute' : 'Mute';
    this.#ui.mute.setAttribute('aria-pressed', String(mute));
  }

  leave(): void {
    if (this.state !== 'in-call' && this.state !== 'joining') return;
    this.#teardown();
    this.#setState('idle');
  }

  #teardown(): void {
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    this.#statsTimer = null;
    this.#loop?.stop();
    this.#loop = null;
    this.#sender.attach(null);
    if (this.#socket?.connected) this.#socket.emit('room-leave');
    this.#socket?.removeAllListeners();
    this.#socket?.disconnect();
    this.#socket = null;
    this.#peers?.closeAll();
    this.#peers = null;
    for (const id of [...this.#tiles.keys()]) this.#removeTile(id);
    stopStream(this.#camera);
    stopStream(this.#microphone);
    this.#camera = this.#microphone = null;
    this.#ui.preview.srcObject = null;
  }

  async #pollStats(): Promise<void> {
    const peers = this.#peers;
    if (!peers) return;
    for (const t of this.#tiles.values()) {
      const r = peers.remotes.get(t.info.id);
      if (!r) continue;
      try {
        const report = [...(await r.pc.getStats()).values()] as Record<string, unknown>[];
        t.sample = readTileStats(report, t.sample, performance.timeOrigin + performance.now());
        t.statsEl.textContent = tileStatsLine(t.sample.stats);
        if (this.#lipSyncStart) {
          t.lipSync ??= new LipSync(r.pc.getReceivers().find((x) => x.track.kind === 'audio') ?? null);
          t.lipSync.update(t.sample.stats);
        }
      } catch {
        // the peer closed meanwhile
      }
    }
    if (peers.own) {
      try {
        let bytes = 0;
        (await peers.own.getStats()).forEach((s: Record<string, unknown>) => {
          if (s.type === 'transport' && typeof s.bytesSent === 'number') bytes += s.bytesSent;
        });
        const now = performance.now();
        const u = this.#uplink;
        if (u.at > 0 && now > u.at) u.kbps = ((bytes - u.bytes) * 8) / (now - u.at);
        u.bytes = bytes;
        u.at = now;
      } catch {
        // closed meanwhile
      }
    }
  }

  async stats(): Promise<CallStatsSnapshot> {
    return {
      state: this.state,
      message: this.message,
      room: this.room,
      participantId: this.participantId,
      muted: this.muted,
      framesSent: this.#sender.counters().sent,
      uplinkKbps: this.#uplink.kbps,
      tiles: [...this.#tiles.values()]
        .filter((t) => t.sample)
        .map((t) => ({ participant: t.info.id, name: t.info.name, voiceTargetMs: t.lipSync?.targetMs ?? null, ...(t.sample as TileSample).stats })),
    };
  }

  #setState(s: CallState, message = ''): void {
    this.state = s;
    this.message = message;
    const ui = this.#ui;
    ui.stateEl.textContent = message ? `${s}: ${message}` : s;
    ui.stateEl.dataset.state = s;
    ui.start.disabled = s !== 'idle' && s !== 'error';
    ui.stop.disabled = s !== 'in-call' && s !== 'joining';
    ui.mute.disabled = s !== 'in-call' || !this.#microphone;
    ui.avatar.disabled = ui.codec.disabled = ui.name.disabled = s === 'joining' || s === 'in-call';
    ui.messageEl.hidden = s !== 'error';
    ui.messageEl.textContent = s === 'error' ? message : '';
    if (s === 'error') ui.messageEl.dataset.kind = 'error';
  }

  #fail(message: string): void {
    this.#setState('error', message);
    this.#ui.start.disabled = this.#config === null;
  }
}

/** Starts the call view for room `room` (validated); shows the error on the page when the name is not valid. */
export async function startCall(room: string): Promise<void> {
  let name: string;
  try {
    name = parseRoomName(room, 'room');
  } catch (e) {
    document.body.prepend(el('p', { className: 'message', role: 'alert', textContent: `Not a room name: ${e instanceof Error ? e.message : String(e)}` }));
    return;
  }
  const page = new CallPage(name);
  Object.defineProperty(window, 'dnpCall', {
    value: Object.freeze({
      get state(): CallState {
        return page.state;
      },
      stats: () => page.stats(),
      leave: () => page.leave(),
    }),
  });
  await page.init();
}
