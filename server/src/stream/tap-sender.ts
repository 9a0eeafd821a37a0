/**
 * TapSender: a werift peer connection that sends one MediaTap (sendonly video + Opus audio in one media stream)
 * without encoding anything: the tap's shared RTP goes to the video track as is, its Opus packets to the audio
 * track, with correct sender reports on the tap clock (lip sync in browsers). A PLI asks the tap for a keyframe; every RTCP packet about the video is handed to `onFeedback` (receiver
 * reports, REMB) for the bandwidth policy. Used by WHEP viewers (answers an offer) and WHIP egress (makes one).
 */
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, useAbsSendTime, useOPUS, useREMB, useSdesMid, type RTCRtpSender, type RtcpPacket } from 'werift';
import type { Logger } from '../log.js';
import { fixSenderReports } from '../media/sender-reports.js';
import { codecParameters, type IceOptions, type IceServerConfig, type PeerState } from '../session/peer.js';
import { OpusRtpPacketizer } from './opus-rtp.js';
import type { MediaTap, Unsubscribe } from './media-tap.js';

export interface TapSenderOptions {
  ice: IceOptions;
  iceServers: IceServerConfig[];
}

function videoCodec(tap: MediaTap): RTCRtpCodecParameters {
  const base = codecParameters(tap.video.codec);
  return new RTCRtpCodecParameters({ ...base, rtcpFeedback: [...base.rtcpFeedback, useREMB()] });
}

/** Waits until ICE gathering completes (host candidates only, so quickly) or `ms` passed. */
export async function waitForGathering(pc: RTCPeerConnection, ms: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    const sub = pc.iceGatheringStateChange.subscribe((s) => {
      if (s === 'complete') done();
    });
    function done(): void {
      clearTimeout(timer);
      sub.unSubscribe();
      resolve();
    }
  });
}

export class TapSender {
  readonly pc: RTCPeerConnection;
  private readonly videoTrack: MediaStreamTrack;
  private readonly audioTrack: MediaStreamTrack;
  private readonly videoSender: RTCRtpSender;
  private readonly unsubs: Unsubscribe[] = [];
  private closed = false;
  readonly stats = { rtpPackets: 0, rtpBytes: 0, opusPackets: 0, opusBytes: 0, keyframeRequests: 0 };
  onState: ((s: PeerState) => void) | null = null;
  onFeedback: ((p: RtcpPacket) => void) | null = null;
  /** Bytes of each RTP payload handed to werift (video + audio). */
  onBytes: ((n: number) => void) | null = null;

  constructor(
    readonly label: string,
    readonly tap: MediaTap,
    opts: TapSenderOptions,
    private readonly log: Logger,
  ) {
    this.pc = new RTCPeerConnection({
      codecs: { video: [videoCodec(tap)], audio: [useOPUS()] },
      headerExtensions: { video: [useSdesMid(), useAbsSendTime()], audio: [useSdesMid()] },
      iceServers: opts.iceServers,
      iceAdditionalHostAddresses: opts.ice.additionalHostAddresses.length ? opts.ice.additionalHostAddresses : undefined,
      icePortRange: opts.ice.portRange ?? undefined,
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
    });
    this.videoTrack = new MediaStreamTrack({ kind: 'video', streamId: tap.id });
    this.audioTrack = new MediaStreamTrack({ kind: 'audio', streamId: tap.id });
    const video = this.pc.addTransceiver(this.videoTrack, { direction: 'sendonly' });
    const audio = this.pc.addTransceiver(this.audioTrack, { direction: 'sendonly' });
    // Correct RTCP sender reports on the tap clock (werift's own NTP time is wrong): the browser lines voice and
    // video up from them. Video RTP time = tap ms x 90, Opus = tap ms x 48 (OpusRtpPacketizer).
    const clock = tap.clockMs ? tap.clockMs.bind(tap) : null;
    this.videoSender = fixSenderReports(video.sender, { clockRate: 90_000, rtpNow: clock ? () => clock() * 90 : undefined });
    fixSenderReports(audio.sender, { clockRate: 48_000, rtpNow: clock ? () => clock() * 48 : undefined });
    video.sender.onPictureLossIndication.subscribe(() => {
      this.stats.keyframeRequests++;
      this.tap.requestKeyframe(`${this.label}: PLI`);
    });
    video.sender.onRtcp.subscribe((p) => this.onFeedback?.(p));
    this.pc.connectionStateChange.subscribe((s) => {
      this.log.debug({ sender: this.label, state: s }, 'tap sender connection state');
      if (s === 'connected') this.tap.requestKeyframe(`${this.label}: connected`);
      this.onState?.(s);
    });
  }

  /** Starts forwarding the tap's media (idempotent). */
  forward(): void {
    if (this.closed || this.unsubs.length) return;
    const opus = new OpusRtpPacketizer();
    this.unsubs.push(
      this.tap.subscribeVideoRtp((rtp) => {
        this.stats.rtpPackets++;
        this.stats.rtpBytes += rtp.length;
        this.videoTrack.writeRtp(rtp);
        this.onBytes?.(rtp.length);
      }),
      this.tap.subscribeOpus((p) => {
        this.stats.opusPackets++;
        this.stats.opusBytes += p.data.length;
        this.audioTrack.writeRtp(opus.packet(p));
        this.onBytes?.(p.data.length + 12);
      }),
    );
  }

  /** SSRC of the video as sent (receiver reports name it). */
  get videoSsrc(): number {
    return this.videoSender.ssrc;
  }

  get bytesSent(): number {
    return this.stats.rtpBytes + this.stats.opusBytes;
  }

  get connectionState(): string {
    return this.pc.connectionState;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubs.splice(0)) u();
    this.onState = null;
    this.onFeedback = null;
    this.onBytes = null;
    try {
      this.videoTrack.stop();
      this.audioTrack.stop();
      await this.pc.close();
    } catch (err) {
      this.log.debug({ sender: this.label, err: err instanceof Error ? err.message : String(err) }, 'error while closing tap sender');
    }
  }
}
