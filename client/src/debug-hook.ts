/**
 * window.dnpDebug: a small read-only view of the page for automated tests (test/e2e-browser.test.ts)
 * and for curious users in the console. Nothing in it changes the page.
 */
import type { App } from './app.js';
import type { LiveStats } from './stats/live-stats.js';

interface DnpDebug {
  readonly state: string;
  stats(): LiveStats;
}

declare global {
  interface Window {
    dnpDebug?: DnpDebug;
  }
}

export function installDebugHook(app: App): void {
  const hook: DnpDebug = Object.freeze({
    get state(): string {
      return app.state;
    },
    stats: (): LiveStats => app.stats(),
  });
  Object.defineProperty(window, 'dnpDebug', { value: hook, writable: false, configurable: false, enumerable: false });
}
