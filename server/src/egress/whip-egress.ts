/**
 * WHIP egress (RFC 9725, WebRTC-HTTP ingestion protocol): POSTs a complete sendonly offer (the tap's video + Opus,
 * TapSender: no extra encode) to a WHIP endpoint, applies the 201 answer and sends; DELETEs the resource on stop.
 * A failed POST, a connection that does not come up, or one that drops → retry with back-off.
 */
import type { Logger } from '../log.js';
import type { IceOptions, IceServerConfig } from '../session/peer.js';
import type { MediaTap } from '../stream/media-tap.js';
import { TapSender, waitForGathering } from '../stream/tap-sender.js';
import { Egress, type BackoffOptions } from './egress.js';

export interface WhipEgressOptions {
  url: string;
  /** Sent as `Authorization: Bearer TOKEN` when set. */
  token: string | null;
  ice: IceOptions;
  iceServers: () => IceServerConfig[];
  backoff: BackoffOptions;
  /** Time for the POST and then for the connection to come up (ms). */
  timeoutMs: number;
  /** A live connection without any RTCP from the endpoint for this long counts as lost (ms); default 5000. */
  silenceMs?: number;
}

export class WhipEgress extends Egress {
  private sender: TapSender | null = null;
  private resource: string | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private lastRtcp = 0;

  constructor(id: string, tap: MediaTap, private readonly opts: WhipEgressOptions, log: Logger) {
    super(id, 'whip', tap, log, opts.backoff);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.opts.token ? { ...extra, authorization: `Bearer ${this.opts.token}` } : extra;
  }

  protected async connect(): Promise<void> {
    const sender = new TapSender(`whip ${this.id}`, this.tap, { ice: this.opts.ice, iceServers: this.opts.iceServers() }, this.log);
    this.sender = sender;
    sender.onBytes = (n) => this.addBytes(n);
    const { pc } = sender;
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc, 5000);
    const res = await fetch(this.opts.url, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/sdp' }),
      body: pc.localDescription?.sdp ?? '',
      signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
    const body = await res.text();
    if (res.status !== 201) throw new Error(`WHIP endpoint answered ${res.status}: ${body.slice(0, 200).trim()}`);
    const location = res.headers.get('location');
    this.resource = location ? new URL(location, this.opts.url).toString() : null;
    if (!/^v=0\r?\n/.test(body)) throw new Error('WHIP endpoint answered 201 without an SDP answer');
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    sender.forward();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`WHIP connection not up after ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
      sender.onState = (s) => {
        if (s === 'connected') {
          clearTimeout(timer);
          resolve();
        } else if (s === 'failed' || s === 'closed') {
          clearTimeout(timer);
          reject(new Error(`WHIP connection ${s}`));
        }
      };
    });
    sender.onState = (s) => {
      if (s === 'failed' || s === 'closed' || s === 'disconnected') this.lost(new Error(`WHIP connection ${s}`));
    };
    // werift notices a peer that went away only after ICE consent expires (~30 s): the receiver's RTCP reports
    // (about one a second) are the quicker sign of life.
    const silenceMs = this.opts.silenceMs ?? 5000;
    this.lastRtcp = performance.now();
    sender.onFeedback = () => {
      this.lastRtcp = performance.now();
    };
    this.watchdog = setInterval(() => {
      if (performance.now() - this.lastRtcp > silenceMs) this.lost(new Error(`no RTCP from the WHIP endpoint for ${silenceMs} ms`));
    }, Math.min(1000, silenceMs / 2));
  }

  protected async disconnect(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    const sender = this.sender;
    const resource = this.resource;
    this.sender = null;
    this.resource = null;
    if (resource) {
      try {
        await fetch(resource, { method: 'DELETE', headers: this.headers(), signal: AbortSignal.timeout(2000) });
      } catch (err) {
        this.log.debug({ egress: this.id, err: err instanceof Error ? err.message : String(err) }, 'WHIP DELETE failed');
      }
    }
    await sender?.close();
  }
}
