/** `dnp serve` as a child process (the real command line), and the URL it prints when it is listening. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './test-avatar.js';

export interface ServeChild {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
}

export async function startServeChild(args: string[], timeoutMs = 60_000): Promise<ServeChild> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'dnp.js'), 'serve', ...args], { cwd: REPO_ROOT, stdio: 'pipe' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      const t = setTimeout(() => reject(new Error(`no start line: ${err}`)), timeoutMs);
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(err);
        if (m?.[1]) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`exited ${code}: ${err}`));
      });
    });
    return { child, url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
