/**
 * MP4 recording to disk: H.264 + AAC (AvWriter), fragmented at each keyframe (a crash leaves a playable file up
 * to the last fragment) and finalised on stop. A write error stops the recording (no retry for files).
 */
import type { Logger } from '../log.js';
import type { MediaTap } from '../stream/media-tap.js';
import { AvWriter } from './av-writer.js';
import { Egress } from './egress.js';
import type { AvEncodeOptions } from './rtmp-egress.js';

export interface Mp4RecorderOptions extends AvEncodeOptions {
  path: string;
}

export class Mp4Recorder extends Egress {
  private writer: AvWriter | null = null;

  constructor(id: string, tap: MediaTap, private readonly opts: Mp4RecorderOptions, log: Logger) {
    super(id, 'mp4', tap, log, null);
  }

  get path(): string {
    return this.opts.path;
  }

  /** What was written (pictures, packets, first / last video ms on the tap clock from the first picture). */
  get writerStats(): AvWriter['stats'] | null {
    return this.writer?.stats ?? this.lastStats;
  }

  private lastStats: AvWriter['stats'] | null = null;

  protected async connect(): Promise<void> {
    const w = new AvWriter(this.tap, {
      format: 'mp4',
      url: this.opts.path,
      videoBitrate: this.opts.videoBitrate,
      audioBitrate: this.opts.audioBitrate,
      keyframeIntervalMs: this.opts.keyframeIntervalMs,
      muxerOptions: { movflags: '+frag_keyframe+empty_moov+default_base_moof' },
      encodePool: this.opts.encodePool ?? null,
    });
    this.writer = w;
    w.onBytes = (n) => this.addBytes(n);
    w.onError = (err) => this.lost(err);
    await w.open();
  }

  protected async disconnect(final: boolean): Promise<void> {
    const w = this.writer;
    this.writer = null;
    if (!w) return;
    await w.close(final);
    this.lastStats = w.stats;
  }
}
