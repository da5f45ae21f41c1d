/** Retry delays: exponential from `baseMs`, doubling, capped at `maxMs`. */

export interface RetryPolicy {
  /** Attempts before a message goes to the dead-letter list. */
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 5, baseMs: 500, maxMs: 60_000 };

/** Delay before attempt `attempt + 1`, after `attempt` failures (attempt >= 1). */
export function retryDelay(attempt: number, policy: RetryPolicy = defaultRetryPolicy): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
}
