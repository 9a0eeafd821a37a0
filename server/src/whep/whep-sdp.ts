/**
 * Checks a WHEP viewer's SDP offer before it reaches werift: text of bounded size, SDP line syntax, a session
 * header, ICE credentials, a DTLS fingerprint and a receivable video section offering the stream's codec.
 * Returns the offer with CRLF line endings, or throws WhepError (400).
 */
import type { VideoCodecName } from '../../../shared/src/signaling.js';

export const MAX_OFFER_BYTES = 32 * 1024;

export class WhepError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'WhepError';
  }
}

const LINE_RE = /^[a-z]=[\x20-\x7e]*$/;

export function checkWhepOffer(text: string, codec: VideoCodecName): string {
  const bad = (why: string): WhepError => new WhepError(400, `malformed SDP offer: ${why}`);
  if (Buffer.byteLength(text) > MAX_OFFER_BYTES) throw new WhepError(413, `SDP offer larger than ${MAX_OFFER_BYTES} bytes`);
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== 'v=0') throw bad('it does not begin with v=0');
  for (const [i, l] of lines.entries()) if (!LINE_RE.test(l)) throw bad(`line ${i + 1} is not an SDP line`);
  if (!lines.some((l) => l.startsWith('o='))) throw bad('no o= line');
  const sections: string[][] = [];
  for (const l of lines) {
    if (l.startsWith('m=')) sections.push([l]);
    else sections[sections.length - 1]?.push(l);
  }
  if (sections.length === 0) throw bad('no media section');
  const session = lines.slice(0, lines.findIndex((l) => l.startsWith('m=')));
  const has = (sec: string[], prefix: string): boolean => sec.some((l) => l.startsWith(prefix)) || session.some((l) => l.startsWith(prefix));
  const video = sections.find((s) => /^m=video \d+ [A-Z/]+ [\d ]+$/.test(s[0] as string));
  if (!video) throw bad('no video section');
  for (const s of sections) {
    if (!/^m=(audio|video|application) \d+ \S+ .+$/.test(s[0] as string)) throw bad(`bad media line "${(s[0] as string).slice(0, 60)}"`);
    if (!has(s, 'a=ice-ufrag:') || !has(s, 'a=ice-pwd:')) throw bad('no ICE credentials');
    if (!has(s, 'a=fingerprint:')) throw bad('no DTLS fingerprint');
  }
  if (video.some((l) => l === 'a=sendonly' || l === 'a=inactive')) throw bad('the video section does not receive');
  const rtpmap = codec === 'vp8' ? /^a=rtpmap:\d+ VP8\/90000$/i : /^a=rtpmap:\d+ H264\/90000$/i;
  if (!video.some((l) => rtpmap.test(l))) throw new WhepError(400, `the offer does not accept ${codec.toUpperCase()} video (the stream's codec)`);
  return `${lines.join('\r\n')}\r\n`;
}
