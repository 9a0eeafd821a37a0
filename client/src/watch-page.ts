/**
 * Viewer mode of the page (`/?watch=ROOM/PARTICIPANT`, optional `&token=`): watches a participant's avatar and
 * voice over WHEP (POST /whep/ROOM/PARTICIPANT with a complete recvonly offer; DELETE on leaving). Reuses the
 * page's video element and its "AI-generated video" label; the camera controls are hidden. window.dnpWatch
 * exposes the state and receive counters for tests.
 */
import { parseClientConfig } from './config.js';
import { configUrl, tokenFromSearch } from './page-token.js';
import type { WatchStats } from './watch-stats.js';

const NAME = /^[A-Za-z0-9_.~-]{1,64}$/;


declare global {
  interface Window {
    dnpWatch?: { readonly state: string; stats(): Promise<WatchStats> };
  }
}

/** Parses ROOM/PARTICIPANT; null when it is not two valid names. */
function parseWatchTarget(v: string): { room: string; participant: string } | null {
  const parts = v.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p))) return null;
  return { room: parts[0] as string, participant: parts[1] as string };
}

export async function startWatch(target: string): Promise<void> {
  let state = 'connecting';
  let message = '';
  const video = document.getElementById('remote') as HTMLVideoElement | null;
  const stateEl = document.getElementById('state');
  const placeholder = document.getElementById('placeholder');
  const setState = (s: string, m = ''): void => {
    state = s;
    message = m;
    if (stateEl) {
      stateEl.textContent = m ? `${s}: ${m}` : s;
      stateEl.dataset.state = s;
    }
    if (placeholder) {
      placeholder.textContent = m || s;
      placeholder.hidden = s === 'playing';
    }
  };
  for (const id of ['avatar', 'codec', 'start', 'stop', 'calibrate', 'preview']) {
    const el = document.getElementById(id);
    const box = el?.closest('label') ?? el;
    if (box instanceof HTMLElement) box.hidden = true;
  }
  let pc: RTCPeerConnection | null = null;
  Object.defineProperty(window, 'dnpWatch', {
    value: Object.freeze({
      get state(): string {
        return state;
      },
      async stats(): Promise<WatchStats> {
        let framesDecoded = 0;
        let audioPacketsReceived = 0;
        let width = 0;
        let height = 0;
        if (pc) {
          (await pc.getStats()).forEach((r: Record<string, unknown>) => {
            if (r.type !== 'inbound-rtp') return;
            if (r.kind === 'video') {
              framesDecoded = Number(r.framesDecoded ?? 0);
              width = Number(r.frameWidth ?? 0);
              height = Number(r.frameHeight ?? 0);
            } else if (r.kind === 'audio') audioPacketsReceived = Number(r.packetsReceived ?? 0);
          });
        }
        return { state, message, framesDecoded, audioPacketsReceived, width, height };
      },
    }),
  });
  const t = parseWatchTarget(target);
  if (!t || !video) {
    setState('error', 'watch=ROOM/PARTICIPANT expected');
    return;
  }
  const token = tokenFromSearch(location.search);
  const title = document.querySelector('h1');
  if (title) title.textContent = `dnp-live · watching ${t.participant} in ${t.room}`;
  try {
    const config = parseClientConfig(await (await fetch(configUrl(token))).json());
    pc = new RTCPeerConnection({ iceServers: config.iceServers });
    const stream = new MediaStream();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      video.srcObject = stream;
      video.muted = false;
      void video.play().catch(() => {
        video.muted = true; // autoplay with sound refused until the user interacts: play muted
        return video.play();
      });
    };
    const conn = pc;
    conn.onconnectionstatechange = () => {
      if (conn.connectionState === 'connected') setState('playing');
      else if (conn.connectionState === 'failed') setState('error', 'connection failed');
    };
    await conn.setLocalDescription(await conn.createOffer());
    await new Promise<void>((resolve) => {
      if (conn.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, 3000);
      conn.onicegatheringstatechange = () => {
        if (conn.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    const endpoint = `/whep/${encodeURIComponent(t.room)}/${encodeURIComponent(t.participant)}`;
    const headers: Record<string, string> = { 'content-type': 'application/sdp' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(endpoint, { method: 'POST', headers, body: conn.localDescription?.sdp ?? '' });
    const body = await res.text();
    if (res.status !== 201) throw new Error(body.trim() || `HTTP ${res.status}`);
    const resource = res.headers.get('location');
    window.addEventListener('pagehide', () => {
      if (resource) void fetch(resource, { method: 'DELETE', headers: token ? { authorization: `Bearer ${token}` } : {}, keepalive: true });
      conn.close();
    });
    await conn.setRemoteDescription({ type: 'answer', sdp: body });
  } catch (err) {
    setState('error', err instanceof Error ? err.message : String(err));
  }
}
