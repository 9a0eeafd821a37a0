/**
 * EgressManager: the server's egress outputs. Configured ones (`dnp serve --egress-rtmp / --egress-whip /
 * --record`) start by themselves for the participant streams that match `--egress-source ROOM[/PARTICIPANT]`
 * as they appear in the TapDirectory: RTMP and WHIP go to one destination, so they take the first matching stream
 * and the next one after it ends; a recording is made of every matching stream (one file each). A room participant
 * can also start and stop egress of their own stream with a control message (egress-control.ts), to URLs under
 * an `--egress-allow` prefix or into the --record folder only. stop/close are idempotent.
 */
import type { EncodePool } from '../media/encode-pool.js';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { IceOptions, IceServerConfig } from '../session/peer.js';
import type { TapDirectory, TapEntry } from '../stream/tap-directory.js';
import { DEFAULT_BACKOFF, type BackoffOptions, type Egress, type EgressKind } from './egress.js';
import { EgressMetrics } from './egress-metrics.js';
import { Mp4Recorder } from './mp4-recorder.js';
import { AV_ENCODE_DEFAULTS, RtmpEgress, type AvEncodeOptions } from './rtmp-egress.js';
import { WhipEgress } from './whip-egress.js';

export interface EgressSource {
  room: string | '*';
  participant: string | '*';
}

export interface EgressConfig {
  rtmpUrl: string | null;
  whipUrl: string | null;
  whipToken: string | null;
  recordDir: string | null;
  source: EgressSource;
  /** URL prefixes a participant's control message may push to (rtmp://, rtmps://, http(s):// for WHIP). */
  allowedUrls: string[];
  encode: AvEncodeOptions;
  backoff: BackoffOptions;
}

export const EGRESS_CONFIG_DEFAULTS: EgressConfig = {
  rtmpUrl: null,
  whipUrl: null,
  whipToken: null,
  recordDir: null,
  source: { room: '*', participant: '*' },
  allowedUrls: [],
  encode: AV_ENCODE_DEFAULTS,
  backoff: DEFAULT_BACKOFF,
};

export interface EgressTarget {
  kind: EgressKind;
  /** rtmp:// URL, WHIP URL; ignored for mp4 (the file goes into the record folder). */
  url?: string;
}

function matches(s: EgressSource, e: TapEntry): boolean {
  return (s.room === '*' || s.room === e.room) && (s.participant === '*' || s.participant === e.participant);
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

export class EgressManager {
  private readonly outputs = new Map<string, { egress: Egress; entry: TapEntry; configured: boolean }>();
  private readonly observer: EgressMetrics;
  private seq = 0;
  private closed = false;

  /** Where RTMP / MP4 re-encode their video (set by the Server; null: on the main thread). */
  encodePool: EncodePool | null = null;

  constructor(
    readonly config: EgressConfig,
    private readonly taps: TapDirectory,
    private readonly ice: IceOptions,
    private readonly iceServers: () => IceServerConfig[],
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.observer = new EgressMetrics(metrics);
    taps.onAdded = (e) => this.tapAdded(e);
  }

  get size(): number {
    return this.outputs.size;
  }

  list(room?: string): Array<ReturnType<Egress['toJSON']> & { room: string; participant: string }> {
    return [...this.outputs.values()].filter((o) => room === undefined || o.entry.room === room).map((o) => ({ ...o.egress.toJSON(), room: o.entry.room, participant: o.entry.participant }));
  }

  private tapAdded(e: TapEntry): void {
    if (this.closed || !matches(this.config.source, e)) return;
    const busy = (kind: EgressKind): boolean => [...this.outputs.values()].some((o) => o.configured && o.egress.kind === kind && o.egress.state !== 'stopped');
    if (this.config.rtmpUrl && !busy('rtmp')) this.launch(e, { kind: 'rtmp', url: this.config.rtmpUrl }, true);
    if (this.config.whipUrl && !busy('whip')) this.launch(e, { kind: 'whip', url: this.config.whipUrl }, true);
    if (this.config.recordDir) this.launch(e, { kind: 'mp4' }, true);
  }

  /** Whether a participant's control message may push to `url` (an --egress-allow prefix). */
  urlAllowed(url: string): boolean {
    return this.config.allowedUrls.some((p) => url.startsWith(p));
  }

  /** Starts an egress of one tap; returns it (its first attempt runs in the background). */
  start(e: TapEntry, target: EgressTarget): Egress {
    return this.launch(e, target, false);
  }

  private launch(e: TapEntry, target: EgressTarget, configured: boolean): Egress {
    if (this.closed) throw new Error('server closing');
    const id = `${e.room}.${e.participant}.${target.kind}.${++this.seq}`;
    let egress: Egress;
    if (target.kind === 'mp4') {
      if (!this.config.recordDir) throw new Error('recording is off (dnp serve --record DIR)');
      egress = new Mp4Recorder(id, e.tap, { ...this.config.encode, encodePool: this.encodePool, path: join(this.config.recordDir, `${e.room}-${e.participant}-${stamp()}.mp4`) }, this.log);
    } else if (target.kind === 'rtmp') {
      egress = new RtmpEgress(id, e.tap, { ...this.config.encode, encodePool: this.encodePool, url: target.url ?? '', backoff: this.config.backoff }, this.log);
    } else {
      egress = new WhipEgress(id, e.tap, { url: target.url ?? '', token: configured ? this.config.whipToken : null, ice: this.ice, iceServers: this.iceServers, backoff: this.config.backoff, timeoutMs: 15_000 }, this.log);
    }
    egress.observer = this.observer;
    this.outputs.set(id, { egress, entry: e, configured });
    // Stopped (its tap ended, it gave up, or stop()) and closed: forget it, and hand a configured single
    // destination on to the next matching stream.
    void egress.done.then(() => {
      if (this.outputs.get(id)?.egress !== egress) return;
      this.outputs.delete(id);
      if (configured && target.kind !== 'mp4' && !this.closed) for (const next of this.taps.list()) if (next.tap !== e.tap) this.tapAdded(next);
    });
    void egress.start();
    return egress;
  }

  /** Stops one egress by id (only one of `room`, when given); false when there is none. */
  async stop(id: string, room?: string): Promise<boolean> {
    const o = this.outputs.get(id);
    if (!o || (room !== undefined && o.entry.room !== room)) return false;
    this.outputs.delete(id);
    await o.egress.stop();
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.taps.onAdded = null;
    const all = [...this.outputs.values()];
    this.outputs.clear();
    await Promise.all(all.map((o) => o.egress.stop('server closing')));
  }
}
