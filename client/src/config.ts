/**
 * GET /config.json: what the server tells the page. Validated before use.
 *   { "trackerModelUrl": string, "iceServers": [{ "urls": string | string[], "username"?: string, "credential"?: string }] }
 * trackerModelUrl is relative to the page (e.g. "/models/face_landmarker.task") or absolute (the public
 * MediaPipe model when the server has no local copy). iceServers is empty by default (no public STUN/TURN).
 */
import { arr, obj, optional, str } from '../../shared/src/json-check.js';

export interface IceServerConfig {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface ClientConfig {
  trackerModelUrl: string;
  iceServers: IceServerConfig[];
}

export function parseClientConfig(v: unknown): ClientConfig {
  const o = obj(v, 'config.json');
  const trackerModelUrl = str(o.trackerModelUrl, 'config.json: trackerModelUrl', { nonEmpty: true, max: 2048 });
  const list = o.iceServers === undefined ? [] : arr(o.iceServers, 'config.json: iceServers');
  const iceServers = list.map((e, i): IceServerConfig => {
    const p = `config.json: iceServers[${i}]`;
    const s = obj(e, p);
    const urls = Array.isArray(s.urls)
      ? arr(s.urls, `${p}.urls`, { min: 1 }).map((u, j) => str(u, `${p}.urls[${j}]`, { nonEmpty: true, max: 2048 }))
      : str(s.urls, `${p}.urls`, { nonEmpty: true, max: 2048 });
    const out: IceServerConfig = { urls };
    const username = optional(s.username, (x) => str(x, `${p}.username`, { max: 512 }));
    const credential = optional(s.credential, (x) => str(x, `${p}.credential`, { max: 512 }));
    if (username !== undefined) out.username = username;
    if (credential !== undefined) out.credential = credential;
    return out;
  });
  return { trackerModelUrl, iceServers };
}
