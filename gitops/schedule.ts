/**
 * When the next poll happens: the interval while polls succeed; after a
 * failure, the interval doubled per consecutive failure, up to five minutes
 * (seed 004); the first success resets it.
 */

/** The longest wait between two polls, however many failed. */
export const MAX_BACKOFF_MS = 5 * 60_000;

/** The wait before the next poll after `failures` consecutive failed ones. */
export function nextDelay(intervalMs: number, failures: number): number {
  if (failures <= 0) return intervalMs;
  // 2 ** failures stays finite long before it matters: capped at 40 doublings.
  return Math.min(MAX_BACKOFF_MS, Math.max(intervalMs, intervalMs * 2 ** Math.min(failures, 40)));
}
