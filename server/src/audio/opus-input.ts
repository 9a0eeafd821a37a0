/**
 * OpusInput: the caller's microphone as RTP packets (Opus payloads, 48 kHz RTP clock) → a continuous
 * 16 kHz mono PCM stream. A small reorder buffer puts packets back in sequence order; a packet that never
 * comes is given up once `reorderDepth` later packets wait behind it; every gap in RTP time (lost packets,
 * a damaged packet, a sender that paused) becomes silence of the same length (capped at `maxGapMs`), so the
 * PCM stays on the caller's clock. close() is idempotent.
 */
import { OPUS_RTP_CLOCK, OpusDecoder, PCM_RATE } from './opus-decoder.js';

export interface RtpAudioPacket {
  /** RTP sequence number (16 bits). */
  sequenceNumber: number;
  /** RTP timestamp (32 bits, 48 kHz). */
  timestamp: number;
  /** The Opus packet. */
  payload: Buffer;
}

export interface OpusInputOptions {
  /**
   * Packets held waiting for a missing one before it is given up (default 8: 160 ms at 20 ms packets; a loaded
   * server's receive path reorders packets too). It adds delay only while a packet is missing.
   */
  reorderDepth?: number;
  /** Longest silence inserted for one gap (ms, default 1000). */
  maxGapMs?: number;
  /** Receives each stretch of PCM in order (decoded audio or gap silence), 16 kHz mono float. */
  onPcm: (pcm: Float32Array) => void;
}

export interface OpusInputStats {
  packets: number;
  reordered: number;
  late: number;
  duplicates: number;
  lost: number;
  corrupt: number;
  gapSamples: number;
  samples: number;
}

/** a - b for 16-bit sequence numbers, in [-32768, 32767]. */
function seqDiff(a: number, b: number): number {
  return (((a - b) & 0xffff) << 16) >> 16;
}

export class OpusInput {
  private decoder: OpusDecoder | null = new OpusDecoder();
  private readonly depth: number;
  private readonly maxGapTicks: number;
  private readonly onPcm: (pcm: Float32Array) => void;
  private readonly waiting = new Map<number, RtpAudioPacket>();
  private nextSeq: number | null = null;
  /** RTP timestamp right after the last decoded audio. */
  private nextTs: number | null = null;
  private readonly stats: OpusInputStats = { packets: 0, reordered: 0, late: 0, duplicates: 0, lost: 0, corrupt: 0, gapSamples: 0, samples: 0 };

  constructor(opts: OpusInputOptions) {
    this.depth = Math.max(0, Math.floor(opts.reorderDepth ?? 8));
    this.maxGapTicks = Math.round(((opts.maxGapMs ?? 1000) * OPUS_RTP_CLOCK) / 1000);
    this.onPcm = opts.onPcm;
  }

  push(p: RtpAudioPacket): void {
    if (!this.decoder) return;
    this.stats.packets++;
    const seq = p.sequenceNumber & 0xffff;
    if (this.nextSeq === null) this.nextSeq = seq;
    const d = seqDiff(seq, this.nextSeq);
    if (d < 0) {
      this.stats.late++;
      return;
    }
    if (this.waiting.has(seq)) {
      this.stats.duplicates++;
      return;
    }
    if (d === 0 && this.waiting.size > 0) this.stats.reordered++; // filled a hole that later packets waited behind
    this.waiting.set(seq, { sequenceNumber: seq, timestamp: p.timestamp >>> 0, payload: p.payload });
    this.drain(false);
  }

  /** Emits everything still waiting (end of the stream), giving up on the packets still missing. */
  flush(): void {
    this.drain(true);
  }

  private drain(all: boolean): void {
    while (this.nextSeq !== null && this.waiting.size > 0) {
      let p = this.waiting.get(this.nextSeq);
      if (!p) {
        if (!all && this.waiting.size <= this.depth) return;
        // give up on the missing packet(s): jump to the oldest one waiting
        let oldest: number | null = null;
        for (const s of this.waiting.keys()) if (oldest === null || seqDiff(s, oldest) < 0) oldest = s;
        if (oldest === null) return;
        this.stats.lost += seqDiff(oldest, this.nextSeq);
        p = this.waiting.get(oldest) as RtpAudioPacket;
      }
      this.waiting.delete(p.sequenceNumber);
      this.nextSeq = (p.sequenceNumber + 1) & 0xffff;
      this.decodeOne(p);
    }
  }

  private decodeOne(p: RtpAudioPacket): void {
    const decoder = this.decoder;
    if (!decoder) return;
    if (this.nextTs !== null) {
      const gap = (p.timestamp - this.nextTs) | 0;
      if (gap > 0) {
        const n = Math.round((Math.min(gap, this.maxGapTicks) * PCM_RATE) / OPUS_RTP_CLOCK);
        this.stats.gapSamples += n;
        this.stats.samples += n;
        this.onPcm(new Float32Array(n));
      }
    }
    const { pcm, ticks } = decoder.decode(p.payload);
    this.stats.corrupt = decoder.corrupt;
    if (ticks > 0) this.nextTs = (p.timestamp + ticks) >>> 0;
    else if (this.nextTs === null) this.nextTs = p.timestamp; // a damaged first packet: the next one fills from here
    if (pcm.length > 0) {
      this.stats.samples += pcm.length;
      this.onPcm(pcm);
    }
  }

  toJSON(): OpusInputStats {
    return { ...this.stats };
  }

  close(): void {
    this.waiting.clear();
    this.decoder?.close();
    this.decoder = null;
  }
}
