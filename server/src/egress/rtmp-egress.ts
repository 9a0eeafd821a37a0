/**
 * RTMP egress (a streaming platform's ingest URL, rtmp://HOST/APP/KEY): FLV with H.264 + AAC (AvWriter). A refused
 * or dropped connection, or a stalled output, is retried with back-off; each attempt starts a fresh FLV stream
 * with a keyframe.
 */
import type { EncodePool } from '../media/encode-pool.js';
import type { Logger } from '../log.js';
import type { MediaTap } from '../stream/media-tap.js';
import { AvWriter } from './av-writer.js';
import { Egress, type BackoffOptions } from './egress.js';

export interface AvEncodeOptions {
  videoBitrate: number;
  audioBitrate: number;
  keyframeIntervalMs: number;
  /** Where the video is re-encoded (the server's encode workers); absent: on the main thread. */
  encodePool?: EncodePool | null;
}

export const AV_ENCODE_DEFAULTS: AvEncodeOptions = { videoBitrate: 1_500_000, audioBitrate: 96_000, keyframeIntervalMs: 2000 };

export interface RtmpEgressOptions extends AvEncodeOptions {
  url: string;
  backoff: BackoffOptions;
}

/** rtmp:// or rtmps:// with a host; throws saying what is wrong. */
export function checkRtmpUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a URL: ${url}`);
  }
  if (u.protocol !== 'rtmp:' && u.protocol !== 'rtmps:') throw new Error(`not an rtmp:// or rtmps:// URL: ${url}`);
  if (!u.hostname) throw new Error(`no host in ${url}`);
  return url;
}

export class RtmpEgress extends Egress {
  private writer: AvWriter | null = null;

  constructor(id: string, tap: MediaTap, private readonly opts: RtmpEgressOptions, log: Logger) {
    super(id, 'rtmp', tap, log, opts.backoff);
    checkRtmpUrl(opts.url);
  }

  protected async connect(): Promise<void> {
    const w = new AvWriter(this.tap, { format: 'flv', url: this.opts.url, videoBitrate: this.opts.videoBitrate, audioBitrate: this.opts.audioBitrate, keyframeIntervalMs: this.opts.keyframeIntervalMs, encodePool: this.opts.encodePool ?? null });
    this.writer = w;
    w.onBytes = (n) => this.addBytes(n);
    w.onError = (err) => this.lost(err);
    await w.open();
  }

  protected async disconnect(): Promise<void> {
    const w = this.writer;
    this.writer = null;
    await w?.close(false);
  }
}
