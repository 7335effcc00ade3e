/** The one per-task lock of the adapter layer (the store's file mutations and the registry's installs use it). */

/** Per-key FIFO mutex: callers on one key run one at a time, different keys never wait on each other. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Drop the entry once nobody queued behind us, so the map does not grow with every task ever seen.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
