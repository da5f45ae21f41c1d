/**
 * When a driver takes a snapshot and compacts its log: every so many entries
 * applied, or once they hold so many bytes however few they are (the log in
 * memory stays bounded), and never before the bytes applied since the last
 * snapshot reach its size (so the work of snapshots stays in proportion to
 * what is written, however large the state). A snapshot made off the driver's
 * thread is kept here until the driver stores it.
 */

export interface Taken {
  index: number;
  data: Uint8Array;
}

export class Compaction {
  readonly #every: number;
  readonly #afterBytes: number;
  /** The size of the last snapshot, and the bytes of entries applied since it was stored. */
  #snapshotBytes: number;
  #appliedBytes = 0;
  /** One being made off the driver's thread, one made and not yet stored, and whether making one failed. */
  #making = false;
  #made?: Taken;
  #failed = false;

  /** `every`: entries (0: never); `afterBytes`: bytes of entries; `snapshotBytes`: the size of the one stored. */
  constructor(every: number, afterBytes: number, snapshotBytes: number) {
    this.#every = every;
    this.#afterBytes = afterBytes;
    this.#snapshotBytes = snapshotBytes;
  }

  /** An entry of `bytes` was applied. */
  applied(bytes: number): void {
    this.#appliedBytes += bytes;
  }

  /** Whether to take a snapshot now, `since` entries applied after the last. */
  due(since: number): boolean {
    if (this.#every === 0 || this.#making) return false;
    if (since < this.#every && this.#appliedBytes < this.#afterBytes) return false;
    return this.#appliedBytes >= this.#snapshotBytes;
  }

  /** Whether a snapshot must be made on the driver's thread (making one off it failed before). */
  get failed(): boolean {
    return this.#failed;
  }

  /** A snapshot being made off the driver's thread; `done` once it is made or failed. */
  making(snapshot: Promise<Taken>, done: () => void): void {
    this.#making = true;
    snapshot.then((taken) => (this.#made = taken), () => (this.#failed = true)).finally(() => {
      this.#making = false;
      done();
    });
  }

  /** The snapshot made off the thread and not yet stored, handed over once. */
  takeMade(): Taken | undefined {
    const made = this.#made;
    this.#made = undefined;
    return made;
  }

  /** A snapshot of `bytes` was stored: counting starts again. */
  stored(bytes: number): void {
    this.#snapshotBytes = bytes;
    this.#appliedBytes = 0;
  }
}
