/** `dnp serve`: the live avatar server (also `npm start`). */
import { existsSync, statSync } from 'node:fs';
import { createLogger } from '../log.js';
import { DnpServer } from '../server.js';
import { findAvatarFolders } from '../avatars/registry.js';
import { UsageError } from './args.js';
import { DEFAULT_PORT, resolveServeOptions } from './serve-options.js';

export const help = `Usage: dnp serve [options]

Serves the web page and live avatars: the page tracks your face, sends driving vectors over a WebRTC data
channel, and the server renders the avatar and streams it back as a WebRTC video track.

Options (flag, environment variable, default):
  --avatars DIR        DNP_AVATARS        avatars/ in the repository
                       a folder of avatar folders (each avatar.json + avatar.onnx), or one avatar folder
  --port N             PORT               ${DEFAULT_PORT} (0 = any free port)
  --host ADDR          HOST               127.0.0.1 (use 0.0.0.0 to listen on every interface; browsers
                                          only give a page the camera on localhost or over HTTPS)
  --device D           DNP_DEVICE         cpu | webgpu | cuda | torch (falls back to cpu, with a log line,
                                          when the device cannot be used). torch: a PyTorch process runs
                                          the avatar's graph on a GPU (DNP_TORCH_DEVICE, DNP_TORCH_AUTOCAST,
                                          DNP_TORCH_GRAPHS, DNP_PYTHON; docs/gpu.md)
  --threads N          DNP_THREADS        1: ONNX Runtime intra-op threads per avatar (0 = one per core)
  --max-batch N        DNP_MAX_BATCH      8: most frames (from different sessions) rendered in one model run
  --render-workers N   DNP_RENDER_WORKERS auto (one per core, at most 4): render worker threads per avatar, each
                                          with its own model session (callers' frames render in parallel)
  --encode-workers N   DNP_ENCODE_WORKERS auto (half the cores, at least 1): worker threads that convert, encode
                                          and packetise the video (0 = on the main thread, as before)
  --codec C            DNP_CODEC          vp8 | h264: codec when the page does not ask for one (vp8)
  --bitrate B          DNP_BITRATE        video bitrate, e.g. 600k or 1.5M (default: from size and fps)
  --vp8-cpu-used N     DNP_VP8_CPU_USED   8: libvpx speed for VP8, 0..16 (16: about half the encode time of 8,
                                          ~1.5-3 dB PSNR less at the same bitrate)
  --max-sessions N     DNP_MAX_SESSIONS   8
  --join-rate N        DNP_JOIN_RATE      20: joins per minute per client address (then 'rate-limited')
  --max-sockets-per-address N DNP_MAX_SOCKETS_PER_ADDRESS 16: open signaling connections per client address
                                          (joined or not; more are refused: 'too-many-sockets')
  --join-timeout-ms N  DNP_JOIN_TIMEOUT_MS 30000: disconnect a signaling connection without a session this
                                          long (since it connected or its session ended; 0 = never)
  --admission on|off   DNP_ADMISSION      on: refuse a join ('busy') when the measured render + encode time
                                          per frame says one more session would push the others below their fps
  --admission-headroom F DNP_ADMISSION_HEADROOM 1.25: predicted load x F must fit each budget (1..10)
  --max-driving-hz N   DNP_MAX_DRIVING_HZ 120: driving-frame messages per second per session (excess dropped)
  --max-fps F          DNP_MAX_FPS        each avatar's own: serve avatars at this frame rate at most (1..240;
                                          e.g. 25 for a 30 fps avatar: a sixth less CPU per caller)
  --keyframe-interval-ms N DNP_KEYFRAME_INTERVAL_MS 500: PLI-triggered keyframes at most once per N ms
  --rooms A,B          DNP_ROOMS          any: the call rooms admitted (/?room=NAME); others get 'unknown-room'
  --room-size N        DNP_ROOM_SIZE      4: most participants per call room (2..16; then 'room-full')
  --connect-timeout-ms N DNP_CONNECT_TIMEOUT_MS 20000: close a session not connected (ICE + DTLS) by then
  --max-whep-viewers N DNP_MAX_WHEP_VIEWERS 100: WHEP viewers at once (POST /whep/ROOM/PARTICIPANT; then 503)
  --egress-rtmp URL    DNP_EGRESS_RTMP    push the first participant stream matching --egress-source to this
                                          rtmp:// or rtmps:// URL (FLV, H.264 + AAC; retried with back-off)
  --egress-whip URL    DNP_EGRESS_WHIP    push it by WHIP to this http(s):// endpoint (the shared encode + Opus)
  --egress-whip-token T DNP_EGRESS_WHIP_TOKEN sent to the WHIP endpoint as Authorization: Bearer T
  --record DIR         DNP_RECORD_DIR     record every matching participant stream to DIR/ROOM-PARTICIPANT-TIME.mp4
                                          (H.264 + AAC, fragmented, finalised when the stream or server stops)
  --egress-source S    DNP_EGRESS_SOURCE  *: which streams the options above take: ROOM, ROOM/PARTICIPANT or *
  --egress-allow L     DNP_EGRESS_ALLOW   none: URL prefixes (comma-separated, e.g. rtmp://live.example.com/app/)
                                          a room participant may push their own stream to ('room-egress' message)
  --egress-bitrate B   DNP_EGRESS_BITRATE 1.5M: H.264 bitrate of the RTMP / MP4 re-encode
  --idle-timeout-ms N  DNP_IDLE_TIMEOUT_MS 120000: close a session without driving frames this long (0 = never)
  --keepalive-ms N     DNP_KEEPALIVE_MS   250: re-send the last picture this often while the caller pauses
  --ice-host ADDR      DNP_ICE_HOSTS      127.0.0.1: extra host addresses for ICE (comma-separated or
                                          repeated); werift leaves loopback out otherwise
  --public-ip IP       DNP_PUBLIC_IP      the server's public IPv4 behind a 1:1 NAT, advertised next to
                                          each host candidate
  --ice-servers JSON   DNP_ICE_SERVERS    [] (no STUN/TURN); e.g.
                                          '[{"urls":"turn:turn.example.org:3478","username":"u","credential":"p"}]'
                                          used by the server's peer; only entries without credentials are
                                          given to the page (/config.json): use --turn-secret for TURN
  --ice-ports LO-HI    DNP_ICE_PORTS      UDP port range for ICE (default: any)
  --allowed-origins L  DNP_ALLOWED_ORIGINS  page origins allowed to open signaling and to POST (comma-separated,
                                          e.g. https://avatar.example.org); default: the server's own,
                                          http://localhost:PORT, http://127.0.0.1:PORT, http://[::1]:PORT, http://HOST:PORT
                                          (for 0.0.0.0: each address of this machine)
  --token-secret S     DNP_TOKEN_SECRET   HMAC secret (>= 32 characters) for join tokens: when set, every caller
                                          needs a token from 'dnp token'; required when --host is not loopback
  --turn-secret S      DNP_TURN_SECRET    TURN static-auth-secret (coturn use-auth-secret): the page and the
  --turn-urls L        DNP_TURN_URLS      server's peer get short-lived credentials for these turn:/turns: URLs
  --turn-ttl S         DNP_TURN_TTL       3600: lifetime of each TURN credential, seconds
  --metrics-port N     DNP_METRICS_PORT   serve /metrics on 127.0.0.1:N only (0 = any free port) instead of the
                                          main port
  --render-timeout-ms N DNP_RENDER_TIMEOUT_MS 10000: a model run not finished by then is abandoned (its
                                          worker terminated and replaced; the callers of that avatar get an error)
  --tracker-model PATH DNP_TRACKER_MODEL  local face_landmarker.task served at /models/face_landmarker.task
                                          (default: models/face_landmarker.task if present, else none:
                                          the page then loads the official model URL)
  --audio-model DIR    DNP_AUDIO_MODEL    the audio-to-expression model for callers who join with their microphone
                                          (page mode "Microphone only" or "Camera + microphone"); default
                                          assets/audio-expression when present; off = none (such joins are refused)
  --client-dir DIR     DNP_CLIENT_DIR     client/dist (the built page: npm run build)
  --log-level L        LOG_LEVEL          info (fatal, error, warn, info, debug, trace, silent)
  --help                                  this text

SIGTERM / SIGINT: stop accepting, tell connected callers ('shutdown'), close every session, exit within
10 s (a second signal exits at once).

HTTP: / (page; /?watch=ROOM/PARTICIPANT watches a stream), /healthz, /metrics (Prometheus; or on --metrics-port),
/avatars, /config.json, /models/face_landmarker.task, /whep/ROOM/PARTICIPANT (WHEP viewers), socket.io signaling on
/socket.io/. Tokens: 'dnp token --help'.
`;

/** SIGTERM/SIGINT: the longest a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;
/** After a graceful shutdown, how long a leftover handle may keep the process alive. */
const LINGER_MS = 2_000;

function noAvatarHelp(dir: string, detail: string): string {
  return `dnp serve: ${detail}

No usable avatar in ${dir}. An avatar is a folder holding avatar.json and avatar.onnx. To make one:
  - an untrained one, to try the live transport (it renders a pattern, not a face):
      /usr/bin/python3 -m train export --untrained --preset cpu --size 256 --fps 25 --name demo --out ${dir.replace(/\/$/, '')}/demo
  - a real one, from a video of a person:
      dnp prepare ... && dnp train ...   (see 'dnp prepare --help' and 'dnp train --help')
Then run 'npm start' again, or 'dnp serve --avatars DIR'.
`;
}

export async function run(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = resolveServeOptions(argv, process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp serve: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (opts.trackerModelPath !== null && !(existsSync(opts.trackerModelPath) && statSync(opts.trackerModelPath).isFile())) {
    process.stderr.write(`dnp serve: --tracker-model / DNP_TRACKER_MODEL: ${opts.trackerModelPath} is not a file\n`);
    return 2;
  }
  let folders: string[];
  try {
    folders = findAvatarFolders(opts.avatarsDir);
  } catch (err) {
    process.stderr.write(noAvatarHelp(opts.avatarsDir, err instanceof Error ? err.message : String(err)));
    return 1;
  }
  if (folders.length === 0) {
    process.stderr.write(noAvatarHelp(opts.avatarsDir, 'no avatar folders found'));
    return 1;
  }
  const log = createLogger(opts.logLevel);
  if (!existsSync(`${opts.clientDir}/index.html`)) {
    log.warn({ clientDir: opts.clientDir }, 'the web page is not built: run `npm run build` (the server answers / with that hint until then)');
  }
  if (opts.ice.iceServers.some((e) => e.username !== undefined || e.credential !== undefined)) {
    log.warn('--ice-servers entries with a username/credential are used by the server only, never handed to pages; use --turn-secret and --turn-urls for short-lived TURN credentials');
  }
  let server: DnpServer;
  try {
    server = await DnpServer.start(opts, log);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (msg.startsWith('no usable avatar')) process.stderr.write(noAvatarHelp(opts.avatarsDir, msg));
    else process.stderr.write(`dnp serve: ${msg}\n`);
    return 1;
  }
  process.stderr.write(`dnp serve: open ${server.url}/ (avatars: ${server.avatars.list().map((a) => a.id).join(', ')})\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal while stopping: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'stopping: refusing new callers, telling connected ones, closing sessions');
      // Bounded: whatever happens in close(), the process ends within SHUTDOWN_TIMEOUT_MS.
      const hard = setTimeout(() => {
        log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown did not finish in time: exiting');
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS);
      server.close(`the server is shutting down (${signal})`).then(
        () => {
          clearTimeout(hard);
          log.info('stopped');
          // Nothing should be left to keep the event loop alive; if something is, do not hang on it.
          setTimeout(() => {
            log.warn('handles still open after shutdown: exiting anyway');
            process.exit(0);
          }, LINGER_MS).unref();
          resolve(0);
        },
        (err: unknown) => {
          clearTimeout(hard);
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'error while closing');
          setTimeout(() => process.exit(1), LINGER_MS).unref();
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
