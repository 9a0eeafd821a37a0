/**
 * The live page: camera → FaceTracker → driving frames → server; server video → <video>; stats.
 * Owns the camera stream, the tracker, the frame loops, the session and the stats timer; stop()
 * releases everything but the tracker (kept for the next Start), close() releases that too.
 */
import type { VideoCodecName, AvatarSummary, DriveMode, VoiceStats } from '../../shared/src/signaling.js';
import type { DrivingValues } from '../../shared/src/driving-values.js';
import type { RenderReport } from '../../shared/src/render-report.js';
import { parseAvatarList } from './avatars.js';
import { NeutralCalibrator } from './calibration.js';
import { FrameLoop, openCamera, openMicrophone, stopStream } from './camera.js';
import { parseClientConfig, type ClientConfig } from './config.js';
import { configUrl, tokenFromSearch } from './page-token.js';
import { DrivingSender } from './driving-sender.js';
import { cameraErrorMessage, connectionErrorMessage, microphoneErrorMessage, trackerErrorMessage } from './messages.js';
import { LiveSession } from './session.js';
import { LatencyMatcher } from './stats/latency-matcher.js';
import type { LiveStats } from './stats/live-stats.js';
import { emptyCounters, ratesBetween, readRtcCounters, type Rates, type RtcCounters } from './stats/rtc-counters.js';
import { RateMeter, SampleWindow } from './stats/window.js';
import { FaceTracker } from './tracking/face-tracker.js';
import type { View } from './view.js';

export type AppState = 'loading' | 'idle' | 'starting-microphone' | 'starting-camera' | 'loading-tracker' | 'connecting' | 'live' | 'error';

const STATS_INTERVAL_MS = 1000;
const LATENCY_KEEP = 2000;

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as unknown;
}

export class App {
  readonly #view: View;
  /** The join token from the page URL (?token=), or null. */
  readonly #token: string | null = tokenFromSearch(location.search);
  #state: AppState = 'loading';
  #message = '';
  #config: ClientConfig | null = null;
  #avatars: AvatarSummary[] = [];
  #tracker: FaceTracker | null = null;
  #camera: MediaStream | null = null;
  #microphone: MediaStream | null = null;
  #mode: DriveMode = 'camera';
  #voice: VoiceStats | null = null;
  #cameraLoop: FrameLoop | null = null;
  #remoteLoop: FrameLoop | null = null;
  #session: LiveSession | null = null;
  #statsTimer: ReturnType<typeof setInterval> | null = null;
  #run = 0; // incremented by every start/stop, so a stale async step can tell it was cancelled

  // stats
  readonly #sender = new DrivingSender();
  #matcher = new LatencyMatcher();
  readonly #trackingMs = new SampleWindow(5000);
  readonly #latencyMs = new SampleWindow(10_000);
  readonly #renderMs = new SampleWindow(5000);
  readonly #encodeMs = new SampleWindow(5000);
  #latencyAll: number[] = [];
  readonly #cameraRate = new RateMeter();
  readonly #presentedRate = new RateMeter();
  #cameraFrames = 0;
  #facesFound = 0;
  #noFace = 0;
  #trackErrors = 0;
  #videoErrors = 0;
  #rtc: RtcCounters = emptyCounters();
  #rates: Rates = { uplinkKbps: 0, downlinkKbps: 0, videoKbps: 0, decodedFps: 0 };
  #calibrator: NeutralCalibrator | null = null;
  #calibration = 'none';

  constructor(view: View) {
    this.#view = view;
    view.start.addEventListener('click', () => void this.start());
    view.stop.addEventListener('click', () => this.stop());
    view.calibrate.addEventListener('click', () => this.calibrate());
    view.avatar.addEventListener('change', () => this.#render());
    view.remote.addEventListener('error', () => {
      this.#videoErrors++;
    });
    this.#render();
  }

  get state(): AppState {
    return this.#state;
  }

  /** Loads /config.json and /avatars. */
  async init(): Promise<void> {
    try {
      const [config, avatars] = await Promise.all([fetchJson(configUrl(this.#token)), fetchJson('/avatars')]);
      this.#config = parseClientConfig(config);
      this.#avatars = parseAvatarList(avatars);
      this.#view.setAvatars(this.#avatars);
      if (!this.#avatars.some((a) => a.driving === 'expression')) {
        this.#fail('This server has no expression-driven avatars to show.', false);
        return;
      }
      this.#setState('idle');
    } catch (e) {
      this.#fail(`Cannot load the server's configuration: ${e instanceof Error ? e.message : String(e)}. Reload the page to try again.`, false);
    }
  }

  async start(): Promise<void> {
    const config = this.#config;
    if (!config || this.#running()) return;
    const avatar = this.#view.avatar.value;
    const codec: VideoCodecName = this.#view.codec.value === 'h264' ? 'h264' : 'vp8';
    const run = ++this.#run;
    this.#resetStats();
    this.#view.clearMessage();
    const mode = this.#view.driveMode();
    this.#mode = mode;

    if (mode !== 'camera') {
      this.#setState('starting-microphone');
      try {
        this.#microphone = await openMicrophone();
      } catch (e) {
        if (run === this.#run) this.#fail(microphoneErrorMessage(e));
        return;
      }
      if (run !== this.#run) return;
    }
    if (mode !== 'microphone' && !(await this.#startCamera(run, config))) return;

    this.#setState('connecting');
    this.#view.setPlaceholder('Connecting…');
    try {
      // TURN credentials are short-lived: take fresh ones for this session (fall back to those from page load).
      let iceServers = config.iceServers;
      try {
        iceServers = parseClientConfig(await fetchJson(configUrl(this.#token))).iceServers;
      } catch {
        // keep the ones loaded with the page
      }
      const session = await LiveSession.open({
        avatar,
        codec,
        token: this.#token,
        iceServers,
        onVideo: (stream) => this.#onVideo(stream),
        onReport: (r) => this.#onReport(r),
        mode,
        microphone: this.#microphone?.getAudioTracks()[0] ?? null,
        onVoiceStats: (v) => {
          this.#voice = v;
        },
        onEnded: (reason) => {
          if (this.#session === session) this.#fail(connectionErrorMessage(reason));
        },
      });
      if (run !== this.#run) {
        session.close();
        return;
      }
      this.#session = session;
      this.#sender.attach(session.channel);
    } catch (e) {
      if (run === this.#run) this.#fail(connectionErrorMessage(e));
      return;
    }
    this.#statsTimer = setInterval(() => void this.#pollStats(), STATS_INTERVAL_MS);
    this.#setState('live');
  }

  /** Opens the camera and the tracker and starts tracking; false when that failed or the run was cancelled. */
  async #startCamera(run: number, config: ClientConfig): Promise<boolean> {
    this.#setState('starting-camera');
    try {
      this.#camera = await openCamera();
    } catch (e) {
      if (run === this.#run) this.#fail(cameraErrorMessage(e));
      return false;
    }
    if (run !== this.#run) return false;
    this.#view.preview.srcObject = this.#camera;
    void this.#view.preview.play().catch(() => {});

    if (!this.#tracker) {
      this.#setState('loading-tracker');
      const modelUrl = new URL(config.trackerModelUrl, location.href).href;
      try {
        this.#tracker = await FaceTracker.create({ wasmUrl: new URL('wasm', location.href).href.replace(/\/$/, ''), modelUrl });
      } catch (e) {
        if (run === this.#run) this.#fail(trackerErrorMessage(e, modelUrl));
        return false;
      }
      if (run !== this.#run) return false;
    }
    const tracker = this.#tracker;
    const preview = this.#view.preview;
    this.#cameraLoop = new FrameLoop(preview, () => this.#onCameraFrame(tracker, preview));
    return true;
  }

  /** Ends the session and releases the camera; keeps the loaded tracker. Idempotent. */
  stop(): void {
    this.#run++;
    this.#teardown();
    this.#setState(this.#config ? 'idle' : 'error');
  }

  /** stop() and release the tracker too (page unload). */
  close(): void {
    this.stop();
    this.#tracker?.close();
    this.#tracker = null;
  }

  /** Starts collecting ~1 s of the caller's neutral face; the result goes to the server as 'calibrate'. */
  calibrate(): void {
    if (this.#state !== 'live' || this.#calibrator) return;
    this.#calibrator = new NeutralCalibrator(performance.now());
    this.#calibration = 'hold a neutral face…';
    this.#view.showMessage('info', 'Calibrating: look at the camera with a relaxed, neutral face for a second.');
    this.#render();
  }

  stats(): LiveStats {
    const now = performance.now();
    const sc = this.#sender.counters();
    const session = this.#session?.counters();
    const mc = this.#matcher.counters();
    return {
      state: this.#state,
      cameraFrames: this.#cameraFrames,
      facesFound: this.#facesFound,
      noFace: this.#noFace,
      trackErrors: this.#trackErrors,
      cameraFps: this.#cameraRate.rate(now),
      trackingMs: this.#trackingMs.summary(now),
      framesSent: sc.sent,
      framesSkipped: sc.skipped,
      reports: session?.reports ?? mc.reports,
      badMessages: session?.badMessages ?? 0,
      framesPresented: this.#presentedRate.total,
      presentedFps: this.#presentedRate.rate(now),
      framesDecoded: this.#rtc.framesDecoded,
      framesDropped: this.#rtc.framesDropped,
      decodedFps: this.#rates.decodedFps,
      uplinkKbps: this.#rates.uplinkKbps,
      downlinkKbps: this.#rates.downlinkKbps,
      videoKbps: this.#rates.videoKbps,
      codec: this.#rtc.codec,
      frameWidth: this.#rtc.frameWidth,
      frameHeight: this.#rtc.frameHeight,
      latencyMs: this.#latencyMs.summary(now),
      latencySamples: [...this.#latencyAll],
      latencyCount: this.#latencyMs.total,
      latencyUnknownSeq: mc.unknownSeq,
      latencyInconsistent: mc.inconsistent,
      renderMs: this.#renderMs.summary(now),
      encodeMs: this.#encodeMs.summary(now),
      videoErrors: this.#videoErrors,
      calibration: this.#calibration,
      message: this.#message,
      mode: this.#mode,
      speechToLipsMs: this.#voice?.speechToLipsMs ?? null,
      voiceDelayMs: this.#voice?.voiceDelayMs ?? null,
      speech: this.#voice?.speech ?? false,
      playoutOffsetMs: this.#playoutOffsetMs(),
      avOffsetMs: this.#avOffsetMs(),
      audioPacketsSent: this.#rtc.audioPacketsSent,
      audioPacketsReceived: this.#rtc.audioPacketsReceived,
    };
  }

  /** Voice minus video playout position on the server's clock (both from this page's getStats), ms. */
  #playoutOffsetMs(): number | null {
    const d = this.#rtc.audioPlayoutNtpMs - this.#rtc.videoPlayoutNtpMs;
    return Number.isFinite(d) ? d : null;
  }

  /**
   * How far the voice plays ahead of the lips made from it (ms): the server sends the lips speech-to-lips after the
   * sound arrived and the voice voice-delay after it; the browser plays them `playoutOffset` apart on that clock.
   */
  #avOffsetMs(): number | null {
    const p = this.#playoutOffsetMs();
    const v = this.#voice;
    if (p === null || !v || v.speechToLipsMs === null) return null;
    return p + v.speechToLipsMs - v.voiceDelayMs;
  }

  #running(): boolean {
    return this.#state === 'starting-microphone' || this.#state === 'starting-camera' || this.#state === 'loading-tracker' || this.#state === 'connecting' || this.#state === 'live';
  }

  #onCameraFrame(tracker: FaceTracker, video: HTMLVideoElement): void {
    const captureMs = performance.now();
    this.#cameraFrames++;
    this.#cameraRate.tick(captureMs);
    let values: DrivingValues | null = null;
    try {
      const r = tracker.detect(video, captureMs);
      this.#trackingMs.add(captureMs, performance.now() - captureMs);
      values = r?.values ?? null;
    } catch {
      this.#trackErrors++;
    }
    if (values) this.#facesFound++;
    else this.#noFace++;
    const face = values ? 'yes' : 'no';
    if (video.dataset.face !== face) video.dataset.face = face; // the preview's border turns red without a face
    if (this.#calibrator) this.#stepCalibration(values, captureMs);
    const sent = this.#sender.send(values, captureMs);
    if (sent) this.#matcher.noteCapture(sent.seq, sent.captureMs);
  }

  #stepCalibration(values: DrivingValues | null, nowMs: number): void {
    const cal = this.#calibrator;
    const session = this.#session;
    if (!cal) return;
    const step = cal.push(values, nowMs);
    if (!step.done) return;
    this.#calibrator = null;
    if (!step.ok) {
      this.#calibration = 'failed';
      this.#view.showMessage('error', `Calibration failed: ${step.error}.`);
      this.#render();
      return;
    }
    if (!session) return;
    this.#calibration = 'sending…';
    session.calibrate(step.neutral).then(
      () => {
        this.#calibration = `done (${step.frames} frames)`;
        this.#view.clearMessage();
        this.#render();
      },
      (e: unknown) => {
        this.#calibration = 'failed';
        this.#view.showMessage('error', `Calibration failed: ${e instanceof Error ? e.message : String(e)}.`);
        this.#render();
      },
    );
    this.#render();
  }

  #onVideo(stream: MediaStream): void {
    const remote = this.#view.remote;
    remote.srcObject = stream;
    void remote.play().catch(() => {});
    this.#view.setPlaceholder(null);
    this.#remoteLoop?.stop();
    this.#remoteLoop = new FrameLoop(remote, (now, meta) => {
      this.#presentedRate.tick(now);
      if (meta.rtpTimestamp === undefined) return;
      this.#addLatency(this.#matcher.notePresented(meta.rtpTimestamp, meta.presentationTime));
    });
  }

  #onReport(r: RenderReport): void {
    const now = performance.now();
    this.#renderMs.add(now, r.renderMs);
    this.#encodeMs.add(now, r.encodeMs);
    this.#addLatency(this.#matcher.noteReport(r));
  }

  #addLatency(sample: { latencyMs: number } | null): void {
    if (!sample) return;
    this.#latencyMs.add(performance.now(), sample.latencyMs);
    this.#latencyAll.push(sample.latencyMs);
    if (this.#latencyAll.length > LATENCY_KEEP) this.#latencyAll.splice(0, this.#latencyAll.length - LATENCY_KEEP);
  }

  async #pollStats(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    try {
      const report = await session.getStats();
      if (session !== this.#session) return;
      const cur = readRtcCounters([...report.values()] as Record<string, unknown>[]);
      this.#rates = ratesBetween(this.#rtc, cur);
      this.#rtc = cur;
    } catch {
      // the peer closed between the check and the call; the next tick sees no session
    }
    this.#render();
  }

  #resetStats(): void {
    this.#matcher = new LatencyMatcher();
    this.#latencyAll = [];
    this.#rtc = emptyCounters();
    this.#rates = { uplinkKbps: 0, downlinkKbps: 0, videoKbps: 0, decodedFps: 0 };
    this.#calibration = 'none';
    this.#calibrator = null;
    this.#voice = null;
  }

  #teardown(): void {
    if (this.#statsTimer !== null) clearInterval(this.#statsTimer);
    this.#statsTimer = null;
    this.#sender.attach(null);
    this.#session?.close();
    this.#session = null;
    this.#cameraLoop?.stop();
    this.#cameraLoop = null;
    this.#remoteLoop?.stop();
    this.#remoteLoop = null;
    stopStream(this.#camera);
    this.#camera = null;
    stopStream(this.#microphone);
    this.#microphone = null;
    this.#view.preview.srcObject = null;
    delete this.#view.preview.dataset.face;
    this.#view.remote.srcObject = null;
    this.#calibrator = null;
    this.#view.setPlaceholder('Pick an avatar and press Start.');
  }

  #fail(message: string, teardown = true): void {
    if (teardown) {
      this.#run++;
      this.#teardown();
    }
    this.#message = message;
    this.#view.showMessage('error', message);
    this.#setState('error');
  }

  #setState(s: AppState): void {
    this.#state = s;
    if (s !== 'error' && s !== 'loading') this.#message = '';
    this.#render();
  }

  #render(): void {
    const selected = this.#avatars.find((a) => a.id === this.#view.avatar.value);
    const canStart = this.#config !== null && selected?.driving === 'expression';
    this.#view.setState(this.#state, this.#running(), canStart, this.#state === 'live' && this.#calibrator === null && this.#mode !== 'microphone');
    this.#view.renderStats(this.stats());
  }
}
