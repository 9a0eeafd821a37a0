/** `dnp token`: prints a signed, expiring join token for `dnp serve --token-secret`, and a link to the page with it. */
import { isIP } from 'node:net';
import { MIN_SECRET_LENGTH, signJoinToken } from '../access/join-token.js';
import { normalizeOrigin } from '../access/origins.js';

export const help = `Usage: dnp token [options]

Prints a join token (line 1) and a link to the page that carries it (line 2). A server started with
--token-secret (required when it listens on a non-loopback address) admits only callers with a valid token.
The token is an HMAC-SHA256 signature over {avatar scope, role "caller", expiry}; anyone holding it can join
until it expires, so hand it out like a password.

Options (flag, environment variable, default):
  --secret S       DNP_TOKEN_SECRET   the server's --token-secret (at least ${MIN_SECRET_LENGTH} characters)
  --avatar ID                         * (any avatar): the avatar id the token admits to
  --ttl T                             1h: lifetime, e.g. 90s, 30m, 12h, 7d (at most 30d)
  --url BASE                          base URL of the page for the link (e.g. https://avatar.example.org);
                                      default http://HOST:PORT
  --host ADDR      HOST               127.0.0.1 (for the link)
  --port N         PORT               8080 (for the link)
  --help                              this text
`;

const FLAGS = new Set(['secret', 'avatar', 'ttl', 'url', 'host', 'port']);

class UsageError extends Error {}

/** "90s", "30m", "12h", "7d", "3600" (seconds) → seconds. */
export function parseTtl(v: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(v.trim());
  if (!m) throw new UsageError(`--ttl: '${v}' is not a duration like 90s, 30m, 12h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const s = Number(m[1]) * unit;
  if (s < 1 || s > 30 * 86_400) throw new UsageError(`--ttl: ${s} s is outside 1 s .. 30 d`);
  return s;
}

function parse(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}' (see --help)`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!FLAGS.has(name)) throw new UsageError(`unknown option --${name} (see --help)`);
    let value: string | undefined = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    value = value.trim();
    out.set(name, value);
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  try {
    const f = parse(argv);
    const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name]);
    const secret = f.get('secret') ?? env('DNP_TOKEN_SECRET');
    if (secret === undefined) throw new UsageError('no secret: pass --secret or set DNP_TOKEN_SECRET (the same as the server\'s --token-secret)');
    if (secret.length < MIN_SECRET_LENGTH) throw new UsageError(`--secret: at least ${MIN_SECRET_LENGTH} characters`);
    const avatar = f.get('avatar') ?? '*';
    if (avatar.length === 0 || avatar.length > 200) throw new UsageError('--avatar: 1..200 characters');
    const ttl = parseTtl(f.get('ttl') ?? '1h');
    let base: string;
    const url = f.get('url');
    if (url !== undefined) {
      const n = normalizeOrigin(url.replace(/\/+$/, ''));
      if (n === null) throw new UsageError(`--url: '${url}' is not a base URL like https://avatar.example.org`);
      base = n;
    } else {
      const host = f.get('host') ?? env('HOST') ?? '127.0.0.1';
      if (host !== 'localhost' && isIP(host) === 0) throw new UsageError(`--host: '${host}' is not an IP address (or "localhost")`);
      const port = f.get('port') ?? env('PORT') ?? '8080';
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new UsageError(`--port: '${port}' is not a port`);
      base = `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    }
    const exp = Math.floor(Date.now() / 1000) + ttl;
    const token = signJoinToken({ avatar, role: 'caller', exp }, secret);
    process.stdout.write(`${token}\n${base}/?token=${token}\n`);
    process.stderr.write(`dnp token: admits to ${avatar === '*' ? 'any avatar' : `avatar "${avatar}"`} until ${new Date(exp * 1000).toISOString()}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp token: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
