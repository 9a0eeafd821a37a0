/** `dnp token`: prints a signed, expiring join token for `dnp serve --token-secret`, and a link to the page with it. */
import { isIP } from 'node:net';
import { MIN_SECRET_LENGTH, signJoinToken } from '../access/join-token.js';
import { normalizeOrigin } from '../access/origins.js';
import { hostAddress, parseCommandLine, UsageError, type OptionSpec } from './args.js';

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

const OPTIONS = {
  secret: { type: 'string', env: 'DNP_TOKEN_SECRET' },
  avatar: { type: 'string' },
  ttl: { type: 'string' },
  url: { type: 'string' },
  host: { type: 'string', env: 'HOST' },
  port: { type: 'string', env: 'PORT' },
} satisfies Record<string, OptionSpec>;

/** "90s", "30m", "12h", "7d", "3600" (seconds) → seconds. */
export function parseTtl(v: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(v.trim());
  if (!m) throw new UsageError(`--ttl: '${v}' is not a duration like 90s, 30m, 12h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const s = Number(m[1]) * unit;
  if (s < 1 || s > 30 * 86_400) throw new UsageError(`--ttl: ${s} s is outside 1 s .. 30 d`);
  return s;
}

export async function run(argv: string[]): Promise<number> {
  try {
    const cl = parseCommandLine(argv, OPTIONS, { env: process.env });
    const get = (name: keyof typeof OPTIONS): string | undefined => cl.str(name)?.trim();
    const secret = get('secret');
    if (secret === undefined) throw new UsageError('no secret: pass --secret or set DNP_TOKEN_SECRET (the same as the server\'s --token-secret)');
    if (secret.length < MIN_SECRET_LENGTH) throw new UsageError(`--secret: at least ${MIN_SECRET_LENGTH} characters`);
    const avatar = get('avatar') ?? '*';
    if (avatar.length === 0 || avatar.length > 200) throw new UsageError('--avatar: 1..200 characters');
    const ttl = parseTtl(get('ttl') ?? '1h');
    let base: string;
    const url = get('url');
    if (url !== undefined) {
      const n = normalizeOrigin(url.replace(/\/+$/, ''));
      if (n === null) throw new UsageError(`--url: '${url}' is not a base URL like https://avatar.example.org`);
      base = n;
    } else {
      const host = hostAddress('host', get('host') ?? '127.0.0.1');
      const port = cl.int('port', 1, 65535, 8080);
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
