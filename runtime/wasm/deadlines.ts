/**
 * Guest calls' deadlines, kept two ways: the watchdog's thread (watchdog.ts)
 * sets a guest's interrupt flags at its deadline even while this thread is
 * stuck in a guest that spins, and this thread's alarms (alarms.ts) do too
 * and wake a guest that waits (a sleep, a slow client), so that it traps at
 * once.
 */

import { Alarms } from "./alarms.ts";
import { Watchdog, type Watched } from "./watchdog.ts";

export class Deadlines {
  readonly #watchdog = new Watchdog();
  readonly #alarms = new Alarms();

  /** Registers an instance's flags with the watchdog: when it is made, off the request path (arming sends nothing). */
  register(guest: Watched): void {
    this.#watchdog.register(guest);
  }

  /** Gives an instance's watchdog slot back, once it will not be called again. */
  release(guest: Watched): void {
    this.#watchdog.release(guest);
  }

  /** Starts the clock on a call of `guest`; `stop` wakes it if it waits. Returns what stops the clock. */
  arm(guest: Watched, timeoutMs: number, stop?: () => void): () => void {
    const disarm = this.#watchdog.arm(guest, timeoutMs);
    const silence = this.#alarms.arm(timeoutMs, () => {
      Watchdog.fire(guest.flags);
      stop?.();
    });
    return () => {
      disarm();
      silence();
    };
  }

  /** Stops the watchdog's thread and the alarms. */
  close(): void {
    this.#watchdog.close();
    this.#alarms.close();
  }
}
