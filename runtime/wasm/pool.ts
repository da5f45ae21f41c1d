/**
 * Pre-made guest instances. Every call gets a fresh instance (no state leaks
 * between requests, and a trap costs only that request); instantiation happens
 * ahead of time in the background, off the request path.
 */

export class InstancePool<T> {
  readonly #make: () => Promise<T>;
  readonly #target: number;
  readonly #ready: T[] = [];
  readonly #onError: (err: unknown) => void;
  readonly #drop: (instance: T) => void;
  #filling = false;
  #closed = false;

  /** `drop`: lets go of a pre-made instance nobody took (scale to zero, close). */
  constructor(
    make: () => Promise<T>,
    target: number,
    onError: (err: unknown) => void,
    drop: (instance: T) => void = () => {},
  ) {
    this.#make = make;
    this.#target = Math.max(0, target);
    this.#onError = onError;
    this.#drop = drop;
  }

  get ready(): readonly T[] {
    return this.#ready;
  }

  /** Makes the first instance now (so errors surface to the caller), then fills in the background. */
  async warm(): Promise<void> {
    if (this.#ready.length === 0) this.#ready.push(await this.#make());
    this.#refill();
  }

  /** A fresh instance: a pre-made one when available, else made now. */
  async take(): Promise<T> {
    const instance = this.#ready.shift() ?? await this.#make();
    this.#refill();
    return instance;
  }

  /** Drops the pre-made instances; the next take() makes one and refills (scale to zero). */
  shrink(): void {
    for (const instance of this.#ready.splice(0)) this.#drop(instance);
  }

  /** Stops refilling and drops the pre-made instances. */
  close(): void {
    this.#closed = true;
    this.shrink();
  }

  #refill(): void {
    if (this.#filling || this.#closed) return;
    this.#filling = true;
    // A macrotask, so the response in progress goes out before we spend CPU here.
    setTimeout(async () => {
      try {
        while (!this.#closed && this.#ready.length < this.#target) {
          const instance = await this.#make();
          if (this.#closed) {
            this.#drop(instance);
            break;
          }
          this.#ready.push(instance);
        }
      } catch (err) {
        this.#onError(err);
      } finally {
        this.#filling = false;
      }
    }, 0);
  }
}
