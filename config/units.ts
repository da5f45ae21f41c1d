/** Sizes as written in config files: "512Mi", "1Gi", "64M", "1024". */

const units: Record<string, number> = {
  "": 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
  ti: 1024 ** 4,
};

/** One page of a Wasm memory: the least a Wasm service can be given. */
export const WASM_PAGE = 65536;
/** The most a 32-bit Wasm memory can address (65,536 pages). */
export const MAX_WASM_MEMORY = 4 * 1024 ** 3;
/** The least memory Docker lets a container have. */
export const MIN_CONTAINER_MEMORY = 6 * 1024 ** 2;
/** A bound for containers far above any machine, so a size is always an exact whole number of bytes. */
export const MAX_CONTAINER_MEMORY = 1024 ** 5;

/**
 * Parses a size into whole bytes (0 allowed), or returns `undefined` if
 * malformed or too long to be a size.
 */
export function parseSize(text: string): number | undefined {
  if (text.length > 64) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*$/.exec(text);
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * units[(m[2] ?? "").toLowerCase()]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Parses a memory size into bytes (at least one), or returns `undefined` if malformed. */
export function parseMemory(text: string): number | undefined {
  const bytes = parseSize(text);
  return bytes !== undefined && bytes > 0 ? bytes : undefined;
}

/** Formats bytes the way users write them: 536870912 -> "512Mi". */
export function formatMemory(bytes: number): string {
  for (const [suffix, size] of [["Ti", 1024 ** 4], ["Gi", 1024 ** 3], ["Mi", 1024 ** 2], ["Ki", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)}Mi`;
  return `${bytes}B`;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration ("250ms", "5s", "1.5m", "2h") into whole milliseconds, or `undefined` if malformed. */
export function parseDuration(text: string): number | undefined {
  if (text.length > 32) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * durationUnits[m[2]]);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
