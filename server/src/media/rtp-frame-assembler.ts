/**
 * RtpFrameAssembler: received video RTP packets (VP8, RFC 7741; H.264, RFC 6184) → complete encoded pictures.
 * A picture is the run of packets with one timestamp ending in the marker bit; a picture with a sequence gap or
 * without its start is counted as incomplete and dropped (the decoder waits for the next keyframe).
 */
import { H264RtpPayload, Vp8RtpPayload, type RtpPacket } from 'werift';
import type { VideoCodecName } from '../../../shared/src/signaling.js';

export interface AssembledFrame {
  data: Buffer;
  key: boolean;
  rtpTimestamp: number;
}

export class RtpFrameAssembler {
  private packets: RtpPacket[] = [];
  private timestamp = -1;
  incomplete = 0;
  frames = 0;
  /** Called for each picture dropped as incomplete. */
  onIncomplete: (() => void) | null = null;

  constructor(private readonly codec: VideoCodecName) {}

  /** Adds one packet; returns the picture it completed, if any. */
  push(rtp: RtpPacket): AssembledFrame | null {
    const ts = rtp.header.timestamp;
    if (this.timestamp !== ts) {
      if (this.packets.length) this.dropped(); // a new picture began before the marker of the last
      this.packets = [];
      this.timestamp = ts;
    }
    this.packets.push(rtp);
    if (!rtp.header.marker) return null;
    const pkts = this.packets.sort((x, y) => ((x.header.sequenceNumber - y.header.sequenceNumber + 0x8000) & 0xffff) - 0x8000);
    this.packets = [];
    this.timestamp = -1;
    const frame = this.depacketize(pkts, ts);
    if (frame) this.frames++;
    else this.dropped();
    return frame;
  }

  /** Forgets the picture being assembled (the caller saw packets go missing and counts that itself). */
  reset(): void {
    this.packets = [];
    this.timestamp = -1;
  }

  private dropped(): void {
    this.incomplete++;
    this.onIncomplete?.();
  }

  private depacketize(pkts: RtpPacket[], rtpTimestamp: number): AssembledFrame | null {
    for (let i = 1; i < pkts.length; i++) {
      if ((((pkts[i] as RtpPacket).header.sequenceNumber - (pkts[i - 1] as RtpPacket).header.sequenceNumber) & 0xffff) !== 1) return null;
    }
    const parts: Buffer[] = [];
    let key = false;
    if (this.codec === 'vp8') {
      for (const [i, p] of pkts.entries()) {
        const d = Vp8RtpPayload.deSerialize(p.payload);
        if (i === 0 && (!d.sBit || d.pid !== 0)) return null;
        if (i === 0) key = d.isKeyframe;
        parts.push(d.payload);
      }
    } else {
      let fragment: Buffer | undefined;
      for (const p of pkts) {
        const d = H264RtpPayload.deSerialize(p.payload, fragment);
        fragment = d.fragment;
        if (d.isKeyframe) key = true;
        if (d.payload && d.payload.length) parts.push(d.payload);
      }
    }
    return { data: Buffer.concat(parts), key, rtpTimestamp };
  }
}
