/** Entry point of the live page (bundled into client/dist/main.js by scripts/build-client.js). */
import { App } from './app.js';
import { startCall } from './call-page.js';
import { installDebugHook } from './debug-hook.js';
import { View } from './view.js';
import { startWatch } from './watch-page.js';

// `/?watch=ROOM/PARTICIPANT`: viewer mode (WHEP), no camera. `/?room=NAME`: the call view.
const watch = new URLSearchParams(location.search).get('watch');
const room = new URLSearchParams(location.search).get('room');
if (watch !== null) {
  void startWatch(watch);
} else if (room !== null) {
  void startCall(room);
} else {
  const app = new App(new View());
  installDebugHook(app);
  window.addEventListener('pagehide', () => app.close());
  void app.init();
}
