/**
 * The user-facing messages for the things that commonly go wrong, from the error objects the browser
 * gives. Pure, so the wording is tested in Node.
 */
interface ErrorLike {
  name?: unknown;
  message?: unknown;
}

const MAX_DETAIL = 200;

/** First line of a message, shortened: MediaPipe appends a long source-location trace to its errors. */
function short(text: string): string {
  const line = (text.split('\n')[0] ?? '').trim().replace(/[;:,.]+$/, '');
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL - 1)}…` : line;
}

function parts(e: unknown): { name: string; message: string } {
  if (typeof e === 'object' && e !== null) {
    const o = e as ErrorLike & { type?: unknown };
    const name = typeof o.name === 'string' ? o.name : '';
    if (typeof o.message === 'string') return { name, message: short(o.message) };
    // a bare DOM Event (e.g. a failed script or file load) carries no message, only its type
    if (typeof o.type === 'string') return { name, message: `a network or file error ('${o.type}' event)` };
    return { name, message: '' };
  }
  return { name: '', message: short(String(e)) };
}

/** getUserMedia failures (DOMException names from the Media Capture spec). */
export function cameraErrorMessage(e: unknown): string {
  const { name, message } = parts(e);
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow camera access for this page (the camera icon in the address bar) and press Start again.';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'No usable camera was found. Connect a camera and press Start again.';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'The camera is in use by another application or could not be started. Close other apps that use it and press Start again.';
    case 'TypeError':
      return 'This page cannot use the camera here: it must be opened over https:// or from localhost.';
    default:
      return `The camera could not be opened${message ? `: ${message}` : ''}.`;
  }
}

/** getUserMedia failures for the microphone (microphone-only and both modes): the camera texts, for the microphone. */
export function microphoneErrorMessage(e: unknown): string {
  return cameraErrorMessage(e).replace(/camera/g, 'microphone').replace(/Camera/g, 'Microphone');
}

export function trackerErrorMessage(e: unknown, modelUrl: string): string {
  const { message } = parts(e);
  return `The face tracker model could not be loaded from ${modelUrl}${message ? ` (${message})` : ''}. Check the server's tracker model setting and reload the page.`;
}

/** What to tell the caller for each server error code (shared/src/signaling.ts); null = the generic message. */
function refusalText(code: string): string | null {
  switch (code) {
    case 'server-full':
      return 'The avatar server is busy with other callers right now. Try again in a minute.';
    case 'forbidden':
      return "This page's link does not admit you (its token is missing, expired, or for another avatar). Ask for a new link.";
    case 'rate-limited':
      return 'Too many attempts from your address. Wait a few seconds and press Start again.';
    case 'too-many-sockets':
      return 'Too many connections from your address (other tabs or devices behind the same network). Close some and press Start again.';
    case 'join-timeout':
      return 'The connection to the avatar server was closed because no session was started for a while. Press Start again.';
    case 'busy':
      return 'The avatar server is too busy for another caller right now (or your previous attempt is still being set up). Try again in a minute.';
    case 'unknown-avatar':
    case 'unsupported-avatar':
      return 'This avatar is not available on the server. Reload the page and pick another.';
    case 'shutting-down':
      return 'The avatar server is restarting. Try again in a minute.';
    case 'idle':
      return 'The session ended because no face data reached the server for a while. Press Start to continue.';
    case 'connect-timeout':
    case 'peer-failed':
      return 'The video connection to the avatar server could not be set up (no network path: a firewall, or a TURN server is needed). Press Start to try again.';
    case 'render-failed':
      return 'The avatar server could not render this avatar. Press Start to try again.';
    default:
      return null;
  }
}

/** Errors with a `code` (ServerRefusal, from the server's error codes) get a message for that code. */
export function connectionErrorMessage(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  const known = typeof code === 'string' ? refusalText(code) : null;
  if (known) return known;
  const { message } = parts(e);
  return `The connection to the avatar server failed${message ? `: ${message}` : ''}. Press Start to try again.`;
}
