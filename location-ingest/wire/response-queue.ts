/**
 * Where a streaming call's responses go, from several sources (acks from
 * the request loop, offers from the inbox, the drain or supersede), in the
 * order they happen. After `end` or `fail` nothing more is taken.
 */
export interface ResponseSink<T> {
  push(item: T): void;
  end(): void;
  fail(error: unknown): void;
}

/**
 * A ResponseSink read as an async iterable: what connect-node's handlers
 * yield from. Iteration finishes after `end`, or throws the `fail` error.
 * `onEnd` runs once, at the first `end` or `fail`, whoever calls it.
 */
export class ResponseQueue<T> implements AsyncIterable<T>, ResponseSink<T> {
  #items: T[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  #error: unknown;
  readonly #onEnd: (() => void) | undefined;

  constructor(onEnd?: () => void) {
    this.#onEnd = onEnd;
  }

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wake();
    this.#onEnd?.();
  }

  fail(error: unknown): void {
    if (this.#ended) return;
    this.#error = error ?? new Error("stream failed");
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}
