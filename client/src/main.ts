/** Entry point of the live page (bundled into client/dist/main.js by scripts/build-client.js). */
import { App } from './app.js';
import { installDebugHook } from './debug-hook.js';
import { View } from './view.js';
import { startWatch } from './watch-page.js';

// `/?watch=ROOM/PARTICIPANT`: viewer mode (WHEP), no camera.
const watch = new URLSearchParams(location.search).get('watch');
if (watch !== null) {
  void startWatch(watch);
} else {
  const app = new App(new View());
  installDebugHook(app);
  window.addEventListener('pagehide', () => app.close());
  void app.init();
}
