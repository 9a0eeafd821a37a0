/**
 * Opus packets → RTP packets for a werift audio track (RFC 7587: the payload is the Opus packet itself). werift
 * rewrites SSRC, payload type, sequence number and timestamp offset on the way out; the timestamp here is the
 * tap's ms clock at 48 kHz, so audio and video of one tap keep their relative timing.
 */
import { RtpHeader, RtpPacket } from 'werift';
import type { TapOpus } from '../stream/media-tap.js';

export const OPUS_PAYLOAD_TYPE = 111;

export class OpusRtpPacketizer {
  private seq = 0;

  packet(p: TapOpus): RtpPacket {
    this.seq = (this.seq + 1) & 0xffff;
    const header = new RtpHeader({ payloadType: OPUS_PAYLOAD_TYPE, sequenceNumber: this.seq, timestamp: Math.round(p.ptsMs * 48) >>> 0, marker: false });
    return new RtpPacket(header, p.data);
  }
}
