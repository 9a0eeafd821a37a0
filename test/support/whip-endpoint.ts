/**
 * A small WHIP endpoint for tests (127.0.0.1, werift receiving): POST /whip with an SDP offer → 201 + answer +
 * Location /whip/N; DELETE /whip/N → 200. Each session's media is decoded (MediaReceiver). `refuseNext` answers
 * the next POSTs with 503; `dropAll()` closes the live peers (the sender sees the connection go).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RTCPeerConnection, useOPUS } from 'werift';
import type { VideoCodecName } from '../../shared/src/signaling.js';
import { codecParameters } from '../../server/src/session/peer.js';
import { waitForGathering } from '../../server/src/stream/tap-sender.js';
import { MediaReceiver } from './room-client.js';

export interface WhipSession {
  id: number;
  pc: RTCPeerConnection;
  rx: MediaReceiver;
  deleted: boolean;
  authorization: string | undefined;
}

export class TestWhipEndpoint {
  readonly sessions: WhipSession[] = [];
  posts = 0;
  refuseNext = 0;
  private constructor(
    private readonly http: Server,
    private readonly codec: VideoCodecName,
  ) {}

  static async start(codec: VideoCodecName = 'vp8'): Promise<TestWhipEndpoint> {
    const http = createServer();
    const ep = new TestWhipEndpoint(http, codec);
    http.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        ep.handle(req.method ?? 'GET', req.url ?? '/', Buffer.concat(chunks).toString('utf8'), req.headers.authorization).then(
          (r) => {
            res.writeHead(r.status, r.headers);
            res.end(r.body);
          },
          (err: unknown) => {
            res.writeHead(500);
            res.end(String(err));
          },
        );
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return ep;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}/whip`;
  }

  get live(): WhipSession | undefined {
    return [...this.sessions].reverse().find((s) => !s.deleted);
  }

  private async handle(method: string, url: string, body: string, authorization: string | undefined): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    if (method === 'POST' && url === '/whip') {
      this.posts++;
      if (this.refuseNext > 0) {
        this.refuseNext--;
        return { status: 503, headers: {}, body: 'busy (test)' };
      }
      const pc = new RTCPeerConnection({ codecs: { video: [codecParameters(this.codec)], audio: [useOPUS()] }, iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false });
      const rx = new MediaReceiver(pc, this.codec);
      await pc.setRemoteDescription({ type: 'offer', sdp: body });
      await pc.setLocalDescription(await pc.createAnswer());
      await waitForGathering(pc, 5000);
      const s: WhipSession = { id: this.sessions.length + 1, pc, rx, deleted: false, authorization };
      this.sessions.push(s);
      return { status: 201, headers: { 'content-type': 'application/sdp', location: `/whip/${s.id}` }, body: pc.localDescription?.sdp ?? '' };
    }
    const m = /^\/whip\/(\d+)$/.exec(url);
    const s = m ? this.sessions[Number(m[1]) - 1] : undefined;
    if (method === 'DELETE' && s && !s.deleted) {
      await this.end(s);
      return { status: 200, headers: {}, body: '' };
    }
    return { status: 404, headers: {}, body: 'not found' };
  }

  private async end(s: WhipSession): Promise<void> {
    s.deleted = true;
    await s.pc.close();
    s.rx.close();
  }

  /** Closes every live session's peer (as a crashed or restarted ingest server would). */
  async dropAll(): Promise<void> {
    for (const s of this.sessions) if (!s.deleted) await this.end(s);
  }

  async close(): Promise<void> {
    await this.dropAll();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
  }
}
