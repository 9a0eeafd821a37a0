/** What the viewer page (`/?watch=`) reports through window.dnpWatch.stats() (no DOM types: tests import it). */
export interface WatchStats {
  state: string;
  message: string;
  framesDecoded: number;
  audioPacketsReceived: number;
  width: number;
  height: number;
}
