/**
 * Deadlines on this thread with one timer for all of them. Every guest call
 * has a deadline, nearly every call ends long before it, and a timer per call
 * (Node's kind, under npm packages: a Timeout object, a list entry, a clear)
 * cost as much as a WAT handler's whole call. Here arming is a set insert,
 * disarming a delete; the one timer runs at the earliest deadline armed (or
 * later, when that call has ended), and once more after the last one ends.
 */

interface Alarm {
  at: number;
  fire: () => void;
}

export class Alarms {
  readonly #now: () => number;
  readonly #armed = new Set<Alarm>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer runs (Infinity: no timer). */
  #due = Infinity;

  readonly #clearWhenIdle: boolean;

  /**
   * `clearWhenIdle`: clear the timer as soon as nothing is armed (for alarms armed rarely, so that an idle process
   * holds no timer); by default it rings once more instead.
   */
  constructor({ now = () => performance.now(), clearWhenIdle = false }: {
    now?: () => number;
    clearWhenIdle?: boolean;
  } = {}) {
    this.#now = now;
    this.#clearWhenIdle = clearWhenIdle;
  }

  /** Calls `fire` once, `ms` from now, unless the returned function is called first. */
  arm(ms: number, fire: () => void): () => void {
    const alarm = { at: this.#now() + Math.max(0, ms), fire };
    this.#armed.add(alarm);
    if (alarm.at < this.#due) this.#schedule(alarm.at);
    // Unless clearWhenIdle, the timer stays when the last alarm goes: it rings once for nothing, where clearing it
    // would cost a new timer each time calls come one at a time. `close` clears it.
    return () => {
      if (this.#armed.delete(alarm) && this.#clearWhenIdle && this.#armed.size === 0) this.#stop();
    };
  }

  /** How many alarms are armed. */
  get size(): number {
    return this.#armed.size;
  }

  /** Drops every alarm unfired, and the timer. */
  close(): void {
    this.#armed.clear();
    this.#stop();
  }

  #stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = Infinity;
  }

  #schedule(at: number): void {
    clearTimeout(this.#timer);
    this.#due = at;
    this.#timer = setTimeout(() => this.#ring(), Math.max(0, Math.ceil(at - this.#now())));
  }

  #ring(): void {
    this.#timer = undefined;
    this.#due = Infinity;
    const now = this.#now();
    const due: Alarm[] = [];
    let next = Infinity;
    for (const alarm of this.#armed) {
      if (alarm.at <= now) due.push(alarm);
      else if (alarm.at < next) next = alarm.at;
    }
    for (const alarm of due) this.#armed.delete(alarm);
    if (next < Infinity) this.#schedule(next);
    for (const alarm of due) alarm.fire();
  }
}
