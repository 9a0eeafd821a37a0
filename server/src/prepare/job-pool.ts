/** Runs at most `max` async jobs at once; the first error is thrown by the next add() or by drain(). */
export class JobPool {
  #running = new Set<Promise<void>>();
  #max: number;
  #error: unknown = null;
  constructor(max: number) {
    this.#max = max;
  }
  async add(job: () => Promise<void>): Promise<void> {
    if (this.#error) throw this.#error;
    while (this.#running.size >= this.#max) await Promise.race(this.#running);
    if (this.#error) throw this.#error;
    const p: Promise<void> = job()
      .catch((e: unknown) => {
        this.#error ??= e;
      })
      .finally(() => this.#running.delete(p));
    this.#running.add(p);
  }
  async drain(): Promise<void> {
    await Promise.all(this.#running);
    if (this.#error) throw this.#error;
  }
}
