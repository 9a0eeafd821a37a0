/** Defaults of the per-caller limits (`dnp serve` flags; ServerOptions), in one light module the option parser can import. */
export const LIMIT_DEFAULTS = {
  /** --join-rate: joins per minute per client address (token bucket, burst = the same number). */
  joinsPerMinute: 20,
  /** --idle-timeout-ms: a connected session without driving frames this long is closed. */
  idleTimeoutMs: 120_000,
  /** --max-driving-hz: data-channel messages per second per session (1 s burst). */
  maxDrivingHz: 120,
  /** --keyframe-interval-ms: PLI/FIR-triggered keyframes at most once per this many ms per stream. */
  keyframeMinIntervalMs: 500,
  /** --max-sockets-per-address: open signaling sockets per client address (joined or not); more are refused at the handshake. */
  maxSocketsPerAddress: 16,
  /** --join-timeout-ms: a signaling socket without a session this long (since it connected or its session ended) is disconnected. */
  joinTimeoutMs: 30_000,
  /** --admission: refuse a join (code busy) when the measured render + encode time says it would not fit. */
  admission: true,
  /** --admission-headroom: predicted load × this must fit each budget. */
  admissionHeadroom: 1.25,
} as const;
