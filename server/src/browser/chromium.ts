/**
 * Reusable headless Chromium for server-side jobs (`dnp prepare`'s tracker, browser end-to-end tests).
 *
 * Launches the system Chromium (Debian `/usr/bin/chromium` by default; override with the DNP_CHROMIUM
 * environment variable or the `executablePath` option) through playwright-core's
 * `chromium.launchPersistentContext` on a fresh temporary profile folder (playwright rejects
 * `--user-data-dir` in args). `close()` is idempotent and also removes that folder.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

// Profile folders of browsers not yet closed: removed at process exit too, should an owner crash first.
const liveProfiles = new Set<string>();
let exitHookInstalled = false;
function trackProfile(dir: string): void {
  liveProfiles.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const d of liveProfiles) rmSync(d, { recursive: true, force: true });
    });
  }
}

/** Flags every launch gets: headless, no sandbox (containers), software rendering, no network chatter. */
const BASE_CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Flags that feed a Y4M/MJPEG file as the camera to getUserMedia (for live-page tests). */
export function fakeCameraArgs(videoFile: string): string[] {
  return ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${videoFile}`];
}

export interface ChromiumLaunchOptions {
  /** Chromium binary; default: $DNP_CHROMIUM, else /usr/bin/chromium. */
  executablePath?: string;
  /** Extra command-line flags appended after BASE_CHROMIUM_ARGS (e.g. fakeCameraArgs(file)). */
  extraArgs?: readonly string[];
  /** Launch timeout in ms (default 30 000). */
  timeoutMs?: number;
  /**
   * Let playwright close the browser on SIGINT/SIGTERM/SIGHUP (default true). Set false when the caller
   * handles these signals itself and closes the browser (playwright's handler may otherwise exit the
   * process before the caller has cleaned up).
   */
  handleSignals?: boolean;
  /** Called with each line the page logs to its console (default: ignored). */
  onConsole?: (type: string, text: string) => void;
}

export class ChromiumNotFoundError extends Error {
  constructor(path: string, why: string) {
    super(
      `Chromium not found at ${path} (${why}). Install it with \`apt-get install chromium\` ` +
        `or point DNP_CHROMIUM (or --chromium) at a Chromium/Chrome binary.`,
    );
    this.name = 'ChromiumNotFoundError';
  }
}

/** Resolves the Chromium binary: explicit path, else $DNP_CHROMIUM, else /usr/bin/chromium; checks it exists. */
export function resolveChromiumPath(explicit?: string): string {
  const fromEnv = process.env.DNP_CHROMIUM;
  const path = explicit && explicit.length > 0 ? explicit : fromEnv && fromEnv.length > 0 ? fromEnv : DEFAULT_CHROMIUM_PATH;
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ChromiumNotFoundError(path, 'no such file');
  }
  if (!st.isFile()) throw new ChromiumNotFoundError(path, 'not a file');
  return path;
}

export class HeadlessChromium {
  readonly context: BrowserContext;
  readonly executablePath: string;
  #profileDir: string | null;
  #closing: Promise<void> | null = null;

  private constructor(context: BrowserContext, executablePath: string, profileDir: string) {
    this.context = context;
    this.executablePath = executablePath;
    this.#profileDir = profileDir;
  }

  static async launch(opts: ChromiumLaunchOptions = {}): Promise<HeadlessChromium> {
    const executablePath = resolveChromiumPath(opts.executablePath);
    const profileDir = mkdtempSync(join(tmpdir(), 'dnp-chromium-'));
    trackProfile(profileDir);
    let context: BrowserContext;
    try {
      context = await chromium.launchPersistentContext(profileDir, {
        executablePath,
        headless: true,
        args: [...BASE_CHROMIUM_ARGS, ...(opts.extraArgs ?? [])],
        timeout: opts.timeoutMs ?? 30_000,
        handleSIGINT: opts.handleSignals ?? true,
        handleSIGTERM: opts.handleSignals ?? true,
        handleSIGHUP: opts.handleSignals ?? true,
      });
    } catch (err) {
      rmSync(profileDir, { recursive: true, force: true });
      liveProfiles.delete(profileDir);
      throw new Error(`could not start Chromium (${executablePath}): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
    const browser = new HeadlessChromium(context, executablePath, profileDir);
    if (opts.onConsole) {
      const cb = opts.onConsole;
      context.on('console', (m) => cb(m.type(), m.text()));
    }
    return browser;
  }

  /** The page the persistent context opened with, or a new one. */
  async page(): Promise<Page> {
    if (this.#closing) throw new Error('HeadlessChromium is closed');
    return this.context.pages()[0] ?? (await this.context.newPage());
  }

  /** The temporary profile folder (removed by close(); null afterwards). */
  get profileDir(): string | null {
    return this.#profileDir;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  /** Closes the browser and removes its temporary profile. Safe to call more than once. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        try {
          await this.context.close();
        } catch {
          // already gone (crashed or killed): nothing left to close
        } finally {
          if (this.#profileDir) {
            rmSync(this.#profileDir, { recursive: true, force: true });
            liveProfiles.delete(this.#profileDir);
          }
          this.#profileDir = null;
        }
      })();
    }
    return this.#closing;
  }
}
