/** A progress bar on stderr with frames/s and ETA: redrawn in place on a terminal, a line every few seconds otherwise. */
export class Progress {
  #label: string;
  #total: number;
  #out: NodeJS.WriteStream;
  #t0 = performance.now();
  #last = 0;
  #done = 0;
  #tty: boolean;

  constructor(label: string, total: number, out: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#total = Math.max(1, total);
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  update(done: number): void {
    this.#done = done;
    const now = performance.now();
    if (now - this.#last < (this.#tty ? 200 : 3000) && done < this.#total) return;
    this.#last = now;
    this.#draw(false);
  }

  #draw(final: boolean): void {
    const secs = (performance.now() - this.#t0) / 1000;
    const rate = secs > 0 ? this.#done / secs : 0;
    const frac = Math.min(1, this.#done / this.#total);
    const width = 24;
    const fill = Math.round(frac * width);
    const eta = rate > 0 ? Math.max(0, (this.#total - this.#done) / rate) : NaN;
    const line =
      `${this.#label.padEnd(9)} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${this.#done}/${this.#total} frames ` +
      `${rate.toFixed(1)} frames/s ${final ? `${secs.toFixed(1)} s` : `ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '?'}`}`;
    this.#out.write(this.#tty ? `\r${line}\x1b[K${final ? '\n' : ''}` : `${line}\n`);
  }

  finish(): void {
    this.#draw(true);
  }
}
