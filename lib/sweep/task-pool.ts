// At most `size` tasks in flight: add() waits for a free slot, so a producer (a bucket
// listing) runs ahead of the work by no more than the pool. The first failure stops it:
// no new task starts, and add() and drain() throw that error once the tasks in flight end.
export class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`TaskPool size must be a positive integer, not ${size}`);
  }

  async add(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.size && !this.failure) await Promise.race(this.running);
    if (this.failure) {
      await this.drain();
    }
    const p: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Waits for every task in flight; throws the first failure, if any. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}
