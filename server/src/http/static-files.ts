/**
 * Static files (the built page, the local tracker model) through `send` (pillarjs, as Express serves them):
 * ETag and Last-Modified with 304 revalidation, Range requests (206, 416), HEAD, content types by extension,
 * and request paths that climb out of the root (`..`, encoded or not) refused with 403. Folders and dotfiles
 * are 404; errors are short plain-text replies like the other routes'.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import send from 'send';
import type { Logger } from '../log.js';

export interface StaticRoot {
  /** The folder served. */
  root: string;
  /** Files served for a folder's own path (`/` → index.html); none: a folder is 404. */
  index: string[];
  /** 'allow' for a configured file whose name may start with a dot; page paths ignore dotfiles (404). */
  dotfiles: 'allow' | 'ignore';
}

/** Serves `urlPath` (the request's pathname, still percent-encoded) from `where.root`. */
export function serveStatic(req: IncomingMessage, res: ServerResponse, urlPath: string, where: StaticRoot, log: Logger): void {
  const head = req.method === 'HEAD';
  const fail = (status: number, headers: Record<string, string> = {}): void => {
    const body = `${(STATUS_CODES[status] ?? 'error').toLowerCase()}\n`;
    res.writeHead(status, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(head ? undefined : body);
  };
  send(req, urlPath, { root: where.root, index: where.index, dotfiles: where.dotfiles })
    .on('headers', (r: ServerResponse) => {
      // the page URL may carry a join token (?token=): never send it to other sites as a Referer
      r.setHeader('referrer-policy', 'same-origin');
      r.setHeader('x-content-type-options', 'nosniff');
    })
    .on('directory', () => fail(404))
    .on('error', (err: { status?: number; statusCode?: number; headers?: Record<string, string>; message?: string }) => {
      const status = err.status ?? err.statusCode ?? 500;
      if (status >= 500) log.warn({ path: urlPath, root: where.root, err: err.message }, 'static file read failed');
      if (res.headersSent) res.destroy();
      else fail(status, err.headers);
    })
    .pipe(res);
}
