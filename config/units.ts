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

/** Parses a memory size into bytes, or returns `undefined` if malformed. */
export function parseMemory(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*$/.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * units[(m[2] ?? "").toLowerCase()];
  return Number.isFinite(bytes) && bytes > 0 ? Math.round(bytes) : undefined;
}

/** Formats bytes the way users write them: 536870912 -> "512Mi". */
export function formatMemory(bytes: number): string {
  for (const [suffix, size] of [["Ti", 1024 ** 4], ["Gi", 1024 ** 3], ["Mi", 1024 ** 2], ["Ki", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)}Mi`;
  return `${bytes}B`;
}
