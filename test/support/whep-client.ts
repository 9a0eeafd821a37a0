/**
 * A WHEP viewer for tests (werift): recvonly video + audio, the complete offer POSTed as application/sdp, the
 * answer applied; what arrives is decoded by room-client's MediaReceiver (video reassembled + decoded, Opus decoded).
 */
import { RTCPeerConnection, useOPUS } from 'werift';
import type { VideoCodecName } from '../../shared/src/signaling.js';
import type { DecodedPicture } from '../../server/src/media/video-decoder.js';
import { codecParameters } from '../../server/src/session/peer.js';
import { waitForGathering } from '../../server/src/stream/tap-sender.js';
import { MediaReceiver } from './room-client.js';

export interface WhepClientOptions {
  /** Full endpoint URL, e.g. http://127.0.0.1:PORT/whep/ROOM/PARTICIPANT */
  url: string;
  codec?: VideoCodecName;
  token?: string;
  timeoutMs?: number;
}

/** Waits until `pred` holds (checked every 50 ms) or throws after `ms`. */
export async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class WhepClient {
  readonly pc: RTCPeerConnection;
  resource: string | null = null;
  readonly rx: MediaReceiver;
  private closed = false;

  private constructor(readonly opts: WhepClientOptions) {
    const codec = opts.codec ?? 'vp8';
    this.pc = new RTCPeerConnection({ codecs: { video: [codecParameters(codec)], audio: [useOPUS()] }, iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false });
    this.rx = new MediaReceiver(this.pc, codec);
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
  }

  get framesDecoded(): number {
    return this.rx.framesDecoded;
  }
  get pictures(): DecodedPicture[] {
    return this.rx.pictures.map((p) => p.pic);
  }
  /** SSRC of the video as received (0 before the first packet). */
  get videoSsrc(): number {
    return this.pc.getTransceivers()[0]?.receiver.tracks[0]?.ssrc ?? 0;
  }
  get opusPackets(): number {
    return this.rx.opusPackets;
  }
  get opusSamples(): number {
    return this.rx.opusSamples;
  }

  /** POSTs the offer and applies the answer; throws when the endpoint refused it. */
  static async connect(opts: WhepClientOptions): Promise<WhepClient> {
    const c = new WhepClient(opts);
    try {
      await c.negotiate();
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  private async negotiate(): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await waitForGathering(this.pc, 5000);
    const headers: Record<string, string> = { 'content-type': 'application/sdp' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    const res = await fetch(this.opts.url, { method: 'POST', headers, body: this.pc.localDescription?.sdp ?? '', signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000) });
    const body = await res.text();
    if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${body.trim()}`);
    if (res.headers.get('content-type') !== 'application/sdp') throw new Error(`WHEP answer has content-type ${res.headers.get('content-type')}`);
    this.resource = new URL(res.headers.get('location') ?? '', this.opts.url).toString();
    await this.pc.setRemoteDescription({ type: 'answer', sdp: body });
  }

  until(pred: () => boolean, ms: number, what: string): Promise<void> {
    return until(pred, ms, what);
  }

  /** DELETEs the WHEP resource (returns the status), then closes. */
  async stop(): Promise<number> {
    let status = 0;
    if (this.resource) {
      const headers: Record<string, string> = this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
      status = (await fetch(this.resource, { method: 'DELETE', headers })).status;
    }
    await this.close();
    return status;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pc.close();
    this.rx.close();
  }
}
