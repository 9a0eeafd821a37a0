/**
 * Feed: one remote participant's media to one room participant — a Peer of its own (video + Opus sendonly in
 * one media stream named after the remote participant; no data channel) that forwards the remote participant's
 * shared encode and voice (MediaTap) as they are. A PLI and the connection coming up ask the tap for a keyframe.
 * Sender reports follow the tap's clock, so the browser syncs the avatar's lips with the voice.
 */
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Peer, type IceOptions, type PeerState } from '../session/peer.js';
import type { MediaTap, Unsubscribe } from '../stream/media-tap.js';
import { TapBandwidth } from '../stream/tap-bandwidth.js';

export class Feed {
  readonly peer: Peer;
  private readonly unsubs: Unsubscribe[] = [];
  private closed = false;
  private forwarding = false;
  private connectTimer: NodeJS.Timeout | null = null;
  readonly stats = { rtpPackets: 0, rtpBytes: 0, opusPackets: 0, opusBytes: 0 };
  /** The peer failed, closed or never connected: the owner drops this feed. */
  onEnded: ((why: PeerState | 'connect-timeout') => void) | null = null;

  constructor(
    /** Peer id, unique on the server (the 'room-offer' / 'room-answer' key). */
    readonly id: string,
    readonly tap: MediaTap,
    codec: VideoCodecName,
    ice: IceOptions,
    private readonly connectTimeoutMs: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    const clock = tap.clockMs ? tap.clockMs.bind(tap) : null;
    this.peer = new Peer(codec, ice, log, {
      audio: 'sendonly',
      dataChannel: false,
      streamId: tap.id,
      videoRtpNow: clock ? () => clock() * 90 : undefined,
      audioRtpNow: clock ? () => clock() * 48 : undefined,
    });
    metrics.peers.inc();
    this.peer.onKeyframeRequest = () => this.tap.requestKeyframe(`feed ${id}: PLI`);
    this.peer.onState = (s) => {
      if (s === 'connected') this.forward();
      else if (s === 'failed' || s === 'closed') this.onEnded?.(s);
    };
    this.unsubs.push(tap.onClosed(() => void this.close()));
    // Its receiver reports feed the stream's bandwidth policy (stream/tap-bandwidth.ts).
    const bandwidth = TapBandwidth.of(metrics);
    if (bandwidth) this.unsubs.push(bandwidth.attach(tap, id, () => this.peer.sender.ssrc, (cb) => void this.peer.sender.onRtcp.subscribe(cb)));
  }

  async offer(): Promise<string> {
    const sdp = await this.peer.createOffer();
    if (!this.closed) this.connectTimer = setTimeout(() => this.onEnded?.('connect-timeout'), this.connectTimeoutMs);
    return sdp;
  }

  private forward(): void {
    if (this.closed || this.forwarding) return;
    this.forwarding = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.unsubs.push(
      this.tap.subscribeVideoRtp((rtp) => {
        this.stats.rtpPackets++;
        this.stats.rtpBytes += rtp.length;
        this.peer.track.writeRtp(rtp);
      }),
      this.tap.subscribeOpus((p) => {
        this.stats.opusPackets++;
        this.stats.opusBytes += p.data.length;
        this.peer.sendOpus(p.data, Math.round(p.ptsMs * 48));
      }),
    );
    this.tap.requestKeyframe(`feed ${this.id}: new receiver`);
    this.log.debug({ feed: this.id, tap: this.tap.id }, 'feed connected');
  }

  toJSON(): Record<string, unknown> {
    return { id: this.id, tap: this.tap.id, forwarding: this.forwarding, peer: this.peer.toJSON(), ...this.stats };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onEnded = null;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    for (const u of this.unsubs.splice(0)) u();
    try {
      await this.peer.close();
    } finally {
      this.metrics.peers.dec();
    }
  }
}
