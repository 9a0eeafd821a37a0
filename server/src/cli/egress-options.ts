/**
 * `dnp serve` egress and viewer options (flags over environment variables over defaults), resolved into the
 * server's EgressConfig. See README "Viewers and egress".
 */
import { ROOM_NAME_RE } from '../../../shared/src/room-signaling.js';
import { EGRESS_CONFIG_DEFAULTS, type EgressConfig, type EgressSource } from '../egress/egress-manager.js';
import { checkRtmpUrl } from '../egress/rtmp-egress.js';
import { envOptions } from './args.js';

export const EGRESS_FLAGS = envOptions({
  'egress-rtmp': 'DNP_EGRESS_RTMP',
  'egress-whip': 'DNP_EGRESS_WHIP',
  'egress-whip-token': 'DNP_EGRESS_WHIP_TOKEN',
  record: 'DNP_RECORD_DIR',
  'egress-source': 'DNP_EGRESS_SOURCE',
  'egress-allow': 'DNP_EGRESS_ALLOW',
  'egress-bitrate': 'DNP_EGRESS_BITRATE',
  'max-whep-viewers': 'DNP_MAX_WHEP_VIEWERS',
});

type Fail = (message: string) => never;

function httpUrl(name: string, v: string, fail: Fail): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return fail(`--${name}: '${v}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`--${name}: '${v}' must be an http:// or https:// URL`);
  return v;
}

function source(v: string, fail: Fail): EgressSource {
  const [room, participant = '*', extra] = v.split('/');
  const ok = (s: string | undefined): boolean => s === '*' || (s !== undefined && ROOM_NAME_RE.test(s));
  if (extra !== undefined || !ok(room) || !ok(participant)) fail(`--egress-source: '${v}' is not ROOM, ROOM/PARTICIPANT or * (names of A-Z a-z 0-9 _ . ~ -)`);
  return { room: room as string, participant };
}

function prefixes(v: string, fail: Fail): string[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const p of list) if (!/^(rtmps?|https?):\/\/[^/\s]+\//.test(p)) fail(`--egress-allow: '${p}' must be a URL prefix with a host and a path, e.g. rtmp://live.example.com/app/`);
  return list;
}

/** The egress part of the serve options; `bitrate` parses "1.5M" style values. */
export function resolveEgressConfig(get: (name: string) => string | undefined, path: (p: string) => string, bitrate: (v: string) => number, fail: Fail): EgressConfig {
  const rtmp = get('egress-rtmp');
  if (rtmp !== undefined) {
    try {
      checkRtmpUrl(rtmp);
    } catch (err) {
      fail(`--egress-rtmp: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const whip = get('egress-whip');
  const token = get('egress-whip-token') ?? null;
  if (token !== null && whip === undefined) fail('--egress-whip-token needs --egress-whip');
  if (token !== null && !/^[\x21-\x7e]{1,1024}$/.test(token)) fail('--egress-whip-token: printable ASCII without spaces, at most 1024 characters');
  const record = get('record');
  const vb = get('egress-bitrate');
  return {
    ...EGRESS_CONFIG_DEFAULTS,
    rtmpUrl: rtmp ?? null,
    whipUrl: whip === undefined ? null : httpUrl('egress-whip', whip, fail),
    whipToken: token,
    recordDir: record === undefined ? null : path(record),
    source: source(get('egress-source') ?? '*', fail),
    allowedUrls: prefixes(get('egress-allow') ?? '', fail),
    encode: { ...EGRESS_CONFIG_DEFAULTS.encode, videoBitrate: vb === undefined ? EGRESS_CONFIG_DEFAULTS.encode.videoBitrate : bitrate(vb) },
  };
}
