/** HTTP routes of the live server: the page, /config.json, the local tracker model, errors. No avatar needed. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricTotal, metricValue, startTestServer, type TestServer } from './support/server.js';

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request with the path sent as is (fetch would normalise "/../"); HEAD too. */
function raw(url: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function rawGet(url: string, path: string): Promise<number> {
  return (await raw(url, path)).status;
}

const TRACKER_PATH = '/models/face_landmarker.task';

describe('HTTP routes', () => {
  let tmp: string;
  let withPage: TestServer;
  let noPage: TestServer;
  const model = Buffer.from('not really a tracker model, but served byte for byte');

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-http-'));
    mkdirSync(join(tmp, 'avatars'));
    mkdirSync(join(tmp, 'dist', 'wasm'), { recursive: true });
    writeFileSync(join(tmp, 'dist', 'index.html'), '<!doctype html><title>dnp</title>');
    writeFileSync(join(tmp, 'dist', 'main.js'), 'export {};');
    writeFileSync(join(tmp, 'dist', 'wasm', 'x.wasm'), Buffer.from([0, 97, 115, 109]));
    writeFileSync(join(tmp, 'secret.txt'), 'outside the page folder');
    writeFileSync(join(tmp, 'face_landmarker.task'), model);
    withPage = await startTestServer(join(tmp, 'avatars'), {
      clientDir: join(tmp, 'dist'),
      trackerModelPath: join(tmp, 'face_landmarker.task'),
      ice: { additionalHostAddresses: ['127.0.0.1'], publicIp: null, iceServers: [{ urls: 'turn:turn.example.org:3478', username: 'u', credential: 'p' }, { urls: 'stun:stun.example.org:3478' }], portRange: null },
    });
    noPage = await startTestServer(join(tmp, 'avatars'), { clientDir: join(tmp, 'missing') });
  });

  afterAll(async () => {
    await withPage?.close();
    await noPage?.close();
    await noPage?.close(); // idempotent
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the built page with content types', async () => {
    const index = await fetch(`${withPage.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(await index.text()).toContain('<title>dnp</title>');
    expect(index.headers.get('referrer-policy')).toBe('same-origin'); // a ?token= in the page URL stays on this site
    const js = await fetch(`${withPage.url}/main.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const wasm = await fetch(`${withPage.url}/wasm/x.wasm`);
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect((await fetch(`${withPage.url}/nope.js`)).status).toBe(404);
    expect(await rawGet(withPage.url, '/../secret.txt')).toBe(404);
    expect(await rawGet(withPage.url, '/%2e%2e/secret.txt')).toBe(404);
    expect((await fetch(`${withPage.url}/`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses paths that climb out of the page folder, encoded or not, and does not list folders', async () => {
    for (const path of ['/..%2fsecret.txt', '/wasm/..%2f..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '/wasm/%2e%2e/%2e%2e/secret.txt']) {
      const r = await raw(withPage.url, path);
      expect([403, 404], path).toContain(r.status);
      expect(r.body.toString(), path).not.toContain('outside the page folder');
    }
    expect((await raw(withPage.url, '/..%2fsecret.txt')).status).toBe(403); // send's check, after decoding
    expect((await raw(withPage.url, '/wasm')).status).toBe(404);
    expect((await raw(withPage.url, '/wasm/')).status).toBe(404);
    expect((await raw(withPage.url, '/main.js%00.html')).status).toBe(400);
  });

  it('revalidates with ETag and Last-Modified (304), serves ranges (206, 416) and HEAD without a body', async () => {
    const first = await raw(withPage.url, '/main.js');
    expect(first.status).toBe(200);
    const etag = first.headers.etag;
    expect(etag).toBeTruthy();
    expect(first.headers['last-modified']).toBeTruthy();
    const again = await raw(withPage.url, '/main.js', 'GET', { 'if-none-match': etag ?? '' });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect((await raw(withPage.url, '/main.js', 'GET', { 'if-none-match': '"other"' })).status).toBe(200);
    expect((await raw(withPage.url, '/main.js', 'GET', { 'if-modified-since': first.headers['last-modified'] ?? '' })).status).toBe(304);

    const part = await raw(withPage.url, TRACKER_PATH, 'GET', { range: 'bytes=4-9' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 4-9/${model.length}`);
    expect(part.body).toEqual(model.subarray(4, 10));
    const tail = await raw(withPage.url, TRACKER_PATH, 'GET', { range: 'bytes=-5' });
    expect(tail.body).toEqual(model.subarray(model.length - 5));
    const beyond = await raw(withPage.url, TRACKER_PATH, 'GET', { range: `bytes=${model.length + 10}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${model.length}`);

    const head = await raw(withPage.url, '/', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toMatch(/text\/html/);
    expect(Number(head.headers['content-length'])).toBe('<!doctype html><title>dnp</title>'.length);
    expect(head.headers['referrer-policy']).toBe('same-origin');
    expect(head.body.length).toBe(0);
    const missing = await raw(withPage.url, '/nope.js', 'HEAD');
    expect(missing.status).toBe(404);
    expect(missing.body.length).toBe(0);
  });

  it('says to run `npm run build` when the page is missing', async () => {
    const r = await fetch(`${noPage.url}/`);
    expect(r.status).toBe(503);
    expect(await r.text()).toContain('npm run build');
  });

  it('serves the local tracker model and points the page at it; only ICE servers without a secret go to the page', async () => {
    const cfg = (await (await fetch(`${withPage.url}/config.json`)).json()) as { trackerModelUrl: string; iceServers: unknown };
    expect(cfg).toEqual({ trackerModelUrl: '/models/face_landmarker.task', iceServers: [{ urls: 'stun:stun.example.org:3478' }] });
    const r = await fetch(`${withPage.url}${cfg.trackerModelUrl}`);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer())).toEqual(model);
    expect((await fetch(`${noPage.url}/models/face_landmarker.task`)).status).toBe(404);
  });

  it('reports health and an empty avatar list', async () => {
    expect(await (await fetch(`${noPage.url}/healthz`)).json()).toEqual({ ok: true, avatars: 0, sessions: 0 });
    expect(await (await fetch(`${noPage.url}/avatars`)).json()).toEqual([]);
    const metrics = await fetch(`${noPage.url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await metrics.text()).toContain('dnp_process_cpu_seconds_total');
  });

  it('metric helpers fail on a missing metric instead of reading 0', async () => {
    expect(await metricValue(noPage.url, 'dnp_sessions')).toBe(0);
    expect(await metricValue(noPage.url, 'dnp_signaling_rejected_total{event="join"}')).toBe(0); // declared, untouched series
    await expect(metricValue(noPage.url, 'dnp_no_such_metric')).rejects.toThrow(/not in \/metrics/);
    await expect(metricValue(noPage.url, 'dnp_signaling_rejected_total')).rejects.toThrow(/not in \/metrics/); // labelled family: no unlabelled series
    await expect(metricValue(noPage.url, 'dnp_no_such_metric{a="b"}')).rejects.toThrow(/not in \/metrics/);
    expect(await metricTotal(noPage.url, 'dnp_signaling_rejected_total')).toBe(0);
    await expect(metricTotal(noPage.url, 'dnp_no_such_total')).rejects.toThrow(/not in \/metrics/);
  });
});
