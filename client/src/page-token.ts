/**
 * The join token the page was opened with (`/?token=...`, printed by `dnp token`): passed in the socket.io
 * handshake (auth.token) and to /config.json (TURN credentials). Null when absent or not token-shaped.
 */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,900}\.[A-Za-z0-9_-]{1,100}$/;

export function tokenFromSearch(search: string): string | null {
  const t = new URLSearchParams(search).get('token');
  return t !== null && TOKEN_SHAPE.test(t) ? t : null;
}

/** /config.json, with the token when there is one. */
export function configUrl(token: string | null): string {
  return token === null ? '/config.json' : `/config.json?token=${encodeURIComponent(token)}`;
}
