/**
 * Prometheus metrics (prom-client), all prefixed `dnp_`, on a registry owned by one Server (so several
 * servers in one process — tests — never share counters).
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const MS_BUCKETS = [1, 2, 4, 6, 8, 10, 15, 20, 30, 40, 60, 80, 120, 200, 400];

export class Metrics {
  readonly registry = new Registry();
  readonly sessions = new Gauge({ name: 'dnp_sessions', help: 'live sessions', registers: [this.registry] });
  readonly sessionsTotal = new Counter({ name: 'dnp_sessions_total', help: 'sessions created', registers: [this.registry] });
  readonly renderMs = new Histogram({ name: 'dnp_render_ms', help: 'model run time per batch (ms)', labelNames: ['avatar'], buckets: MS_BUCKETS, registers: [this.registry] });
  readonly renderBatch = new Histogram({ name: 'dnp_render_batch_size', help: 'frames per model run', buckets: [1, 2, 4, 8, 16, 32], registers: [this.registry] });
  readonly encodeMs = new Histogram({ name: 'dnp_encode_ms', help: 'RGB→YUV + encode + packetise time per frame (ms)', labelNames: ['codec'], buckets: MS_BUCKETS, registers: [this.registry] });
  readonly serverLatencyMs = new Histogram({ name: 'dnp_server_latency_ms', help: 'driving frame arrival → its video frame sent (ms): waiting for the frame slot + render + encode', buckets: MS_BUCKETS, registers: [this.registry] });
  readonly framesSent = new Counter({ name: 'dnp_frames_sent_total', help: 'video frames sent', registers: [this.registry] });
  readonly keyframesSent = new Counter({ name: 'dnp_keyframes_sent_total', help: 'keyframes sent (start, PLI)', registers: [this.registry] });
  readonly drivingReceived = new Counter({ name: 'dnp_driving_frames_received_total', help: 'driving frames accepted from the data channel', registers: [this.registry] });
  readonly drivingRejected = new Counter({ name: 'dnp_driving_frames_rejected_total', help: 'data-channel messages rejected (malformed, oversized, text, rate)', labelNames: ['reason'], registers: [this.registry] });
  readonly signalingRejected = new Counter({ name: 'dnp_signaling_rejected_total', help: 'socket.io messages rejected (malformed, unknown avatar, wrong state)', labelNames: ['event'], registers: [this.registry] });
  readonly bytesUp = new Counter({ name: 'dnp_bytes_up_total', help: 'data-channel payload bytes received from callers', registers: [this.registry] });
  readonly bytesDown = new Counter({ name: 'dnp_bytes_down_total', help: 'RTP + render-report bytes sent to callers', registers: [this.registry] });
  readonly renderBehind = new Counter({ name: 'dnp_render_behind_total', help: 'model runs slower than one frame interval', labelNames: ['avatar'], registers: [this.registry] });
  readonly renderRestarts = new Counter({ name: 'dnp_render_worker_restarts_total', help: 'render workers started again after their thread crashed or exited (--render-workers; the others took the frames meanwhile)', labelNames: ['avatar'], registers: [this.registry] });
  readonly renderHung = new Counter({ name: 'dnp_render_hung_total', help: 'model runs abandoned after the render timeout (worker terminated and replaced)', labelNames: ['avatar'], registers: [this.registry] });
  readonly accessRefused = new Counter({ name: 'dnp_access_refused_total', help: 'connections and requests refused: origin (not on the allow-list), token (missing, bad, expired), scope (token for another avatar)', labelNames: ['reason'], registers: [this.registry] });
  readonly joinsRateLimited = new Counter({ name: 'dnp_joins_rate_limited_total', help: 'joins refused by the per-address join rate (--join-rate)', registers: [this.registry] });
  readonly signalingSockets = new Gauge({ name: 'dnp_signaling_sockets', help: 'open signaling (socket.io) connections, joined or not', registers: [this.registry] });
  readonly socketsRefused = new Counter({ name: 'dnp_signaling_sockets_refused_total', help: 'signaling connections refused at the handshake because their address already had --max-sockets-per-address open', registers: [this.registry] });
  readonly joinTimeouts = new Counter({ name: 'dnp_signaling_join_timeouts_total', help: 'signaling connections disconnected because they had no session for --join-timeout-ms', registers: [this.registry] });
  readonly admissionRefused = new Counter({ name: 'dnp_admission_refused_total', help: 'joins refused by admission control (code busy): the measured render + encode time per frame leaves no room for another session; limit = render (the avatar\'s render worker), encode (the main thread), cores', labelNames: ['avatar', 'limit'], registers: [this.registry] });
  readonly keyframeRequests = new Counter({ name: 'dnp_keyframe_requests_total', help: 'caller keyframe requests (PLI/FIR): honoured at once, or throttled (--keyframe-interval-ms; one deferred keyframe per window)', labelNames: ['outcome'], registers: [this.registry] });
  readonly sessionsEnded = new Counter({ name: 'dnp_sessions_ended_total', help: 'sessions ended, by reason (leave, disconnect, peer-failed, peer-closed, connect-timeout, idle, server-close, rejoin, error)', labelNames: ['reason'], registers: [this.registry] });
  readonly peers = new Gauge({ name: 'dnp_peers', help: 'open WebRTC peers (created by a session, not yet closed)', registers: [this.registry] });
  readonly encoders = new Gauge({ name: 'dnp_encoders', help: 'open video encoders (one per connected session)', labelNames: ['codec'], registers: [this.registry] });
  /** The main thread's busy time (event-loop utilisation's active time since the process started), read at scrape. */
  readonly mainThreadBusy = new Counter({
    name: 'dnp_main_thread_busy_seconds_total',
    help: 'time the main thread (event loop) spent running JavaScript and native calls, not waiting: what every session costs the thread that moves packets',
    registers: [this.registry],
    collect() {
      this.reset();
      this.inc(performance.eventLoopUtilization().active / 1000);
    },
  });
  /** The encode pool now (set by the Server; read at scrape time). */
  liveEncodePool: () => { workers: number; streams: number } = () => ({ workers: 0, streams: 0 });
  readonly encodeWorkers = this.poolGauge('dnp_encode_workers', 'encode worker threads running (media/encode-pool.ts; started as streams need them)', (l) => l.workers);
  readonly encodeStreams = this.poolGauge('dnp_encode_worker_streams', 'streams whose encoder lives in an encode worker', (l) => l.streams);
  readonly encodeWorkerFailures = new Counter({ name: 'dnp_encode_worker_failures_total', help: 'encode workers that crashed, exited or hung (terminated; the streams they carried ended)', registers: [this.registry] });
  /** What each renderer holds now (set by the Server; read at scrape time). */
  liveRenderers: () => Array<{ avatar: string; workers: number; runsInFlight: number; queued: number }> = () => [];
  readonly renderWorkers = this.rendererGauge('dnp_render_workers', 'render worker threads alive (one per avatar; more while a hung one is being terminated)', (l) => l.workers);
  readonly renderRunsInFlight = this.rendererGauge('dnp_render_runs_in_flight', 'model runs sent to a render worker and not yet answered', (l) => l.runsInFlight);
  readonly renderQueued = this.rendererGauge('dnp_render_queued_frames', 'frames waiting for the next model run', (l) => l.queued);
  readonly avatars = new Gauge({ name: 'dnp_avatars', help: 'avatars loaded', registers: [this.registry] });
  readonly avatarLoadErrors = new Counter({ name: 'dnp_avatar_load_errors_total', help: 'avatar folders skipped at load because they were invalid', registers: [this.registry] });
  readonly sessionFailures = new Counter({ name: 'dnp_session_failures_total', help: 'sessions ended by a failure, by avatar and cause (render, encode, offer); the other sessions go on', labelNames: ['avatar', 'cause'], registers: [this.registry] });
  readonly sessionErrors = new Counter({ name: 'dnp_session_errors_total', help: 'sessions ended by an error', registers: [this.registry] });
  readonly streamEncodes = new Counter({ name: 'dnp_stream_encodes_total', help: 'video frames encoded per room participant stream (one encode shared by all its receivers, viewers and egress)', labelNames: ['stream'], registers: [this.registry] });
  readonly rooms = new Gauge({ name: 'dnp_rooms', help: 'live call rooms', registers: [this.registry] });
  readonly roomParticipants = new Gauge({ name: 'dnp_room_participants', help: 'participants in call rooms', registers: [this.registry] });
  readonly roomJoinsRefused = new Counter({ name: 'dnp_room_joins_refused_total', help: 'room joins refused, by code (room-full, unknown-room, already-joined, bad-request, ...)', labelNames: ['code'], registers: [this.registry] });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'dnp_' });
  }

  private poolGauge(name: string, help: string, pick: (l: { workers: number; streams: number }) => number): Gauge {
    const live = (): { workers: number; streams: number } => this.liveEncodePool();
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(pick(live()));
      },
    });
  }

  private rendererGauge(name: string, help: string, pick: (l: { workers: number; runsInFlight: number; queued: number }) => number): Gauge<'avatar'> {
    const live = (): Array<{ avatar: string; workers: number; runsInFlight: number; queued: number }> => this.liveRenderers();
    return new Gauge({
      name,
      help,
      labelNames: ['avatar'],
      registers: [this.registry],
      collect() {
        for (const l of live()) this.set({ avatar: l.avatar }, pick(l));
      },
    });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
