/**
 * A WHEP viewer for tests (werift): recvonly video + audio, the complete offer POSTed as application/sdp, the
 * answer applied; received video is reassembled and decoded (node-av), Opus packets are decoded (OpusDecoder).
 */
import { RTCPeerConnection, useOPUS, type RtpPacket } from 'werift';
import type { VideoCodecName } from '../../shared/src/signaling.js';
import { OpusDecoder } from '../../server/src/audio/opus-decoder.js';
import { RtpFrameAssembler } from '../../server/src/media/rtp-frame-assembler.js';
import { VideoDecoder, type DecodedPicture } from '../../server/src/media/video-decoder.js';
import { codecParameters } from '../../server/src/session/peer.js';
import { waitForGathering } from '../../server/src/stream/tap-sender.js';

export interface WhepClientOptions {
  /** Full endpoint URL, e.g. http://127.0.0.1:PORT/whep/ROOM/PARTICIPANT */
  url: string;
  codec?: VideoCodecName;
  token?: string;
  timeoutMs?: number;
}

/** Receives what a TapSender sends on `pc`: video reassembled + decoded, Opus decoded. */
export class MediaReceiver {
  readonly pictures: DecodedPicture[] = [];
  framesDecoded = 0;
  opusPackets = 0;
  /** 48 kHz samples decoded from the Opus packets received. */
  opusSamples = 0;
  /** keep at most this many decoded pictures */
  keepPictures = 3;
  /** SSRC of the video as received (0 until the first packet). */
  videoSsrc = 0;
  videoBytes = 0;
  private readonly assembler: RtpFrameAssembler;
  private readonly decoder: VideoDecoder;
  private readonly opus = new OpusDecoder();
  private closed = false;

  constructor(pc: RTCPeerConnection, codec: VideoCodecName) {
    this.assembler = new RtpFrameAssembler(codec);
    this.decoder = new VideoDecoder(codec);
    pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
        if (this.closed) return;
        if (track.kind === 'audio') {
          this.opusPackets++;
          this.opusSamples += this.opus.decode(rtp.payload).ticks;
          return;
        }
        this.videoSsrc = rtp.header.ssrc;
        this.videoBytes += rtp.payload.length;
        const f = this.assembler.push(rtp);
        if (!f) return;
        for (const pic of this.decoder.decode(f.data)) {
          this.framesDecoded++;
          this.pictures.push(pic);
          if (this.pictures.length > this.keepPictures) this.pictures.shift();
        }
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.close();
    this.opus.close();
  }
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
    return this.rx.pictures;
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
