/**
 * An array for `writeJson` (write.ts) that is never built: its elements are made one at a time as it is written (the
 * `tickets` and `trials` of a 100,000-trial sweep's `pareto.json`). `JSON.stringify` sees the whole array.
 */
export class JsonRows<T> {
  readonly #make: () => Iterable<T>;

  constructor(make: () => Iterable<T>) {
    this.#make = make;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.#make()[Symbol.iterator]();
  }

  toJSON(): T[] {
    return [...this.#make()];
  }
}
