/**
 * Bodies that stream between the server and a guest host (host_process.ts):
 * a response body arriving from the host chunk by chunk, bounded by what a
 * slow client may leave waiting, and the pieces of a request body the host
 * asked for.
 */

/** Most of a streamed body held for a slow client before the response is cut off. */
const MAX_BUFFERED_BODY = 32 * 1024 * 1024;

/** A streamed response body arriving from a host, chunk by chunk. */
export class IncomingBody {
  readonly readable: ReadableStream<Uint8Array>;
  readonly finished: Promise<string | undefined>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #finish!: (failure: string | undefined) => void;
  #over = false;

  /** `cancelled`: the client went away (the host is told, so that the guest stops writing). */
  constructor(cancelled: () => void) {
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.#over = true; // the client went away: what still comes is dropped
        cancelled();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: 1024 * 1024 }));
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  push(chunk: Uint8Array): void {
    if (this.#over) return;
    this.#controller.enqueue(chunk);
    if ((this.#controller.desiredSize ?? 0) < -MAX_BUFFERED_BODY) {
      this.#over = true;
      this.#controller.error(new Error("the client read too slowly: over 32 MiB of the response waited for it"));
    }
  }

  end(failure: string | undefined): void {
    if (!this.#over) {
      if (failure === undefined) this.#controller.close();
      else this.#controller.error(new Error(failure));
    }
    this.#over = true;
    this.#finish(failure);
  }
}

/**
 * Pieces of a request body the host asked for: `next()` settles true when
 * one may be sent, false once the body is no longer wanted (`stop`, which
 * also aborts `signal`).
 */
export class Wanted {
  readonly #abort = new AbortController();
  #credits = 0;
  #waiting?: (wanted: boolean) => void;

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  add(): void {
    if (this.#waiting) this.#waiting(true);
    else this.#credits++;
    this.#waiting = undefined;
  }

  next(): Promise<boolean> {
    if (this.#abort.signal.aborted) return Promise.resolve(false);
    if (this.#credits > 0) {
      this.#credits--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiting = resolve);
  }

  stop(): void {
    this.#abort.abort(new Error("the request body is no longer wanted"));
    this.#waiting?.(false);
    this.#waiting = undefined;
  }
}
