/** HTTP routes of the live server: the page, /config.json, the local tracker model, errors. No avatar needed. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricTotal, metricValue, startTestServer, type TestServer } from './support/server.js';

/** GET with the path sent as is (fetch would normalise "/../"). */
function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

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
