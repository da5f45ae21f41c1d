/**
 * Finds the line of a key in TOML source, so validation errors can name it.
 * smol-toml reports lines only for syntax errors; this scans table headers
 * (`[a.b]`, `[[a]]`) and `key =` lines, counting array-of-table entries.
 */

export type KeyPath = readonly (string | number)[];

/** The 1-based line that best matches `path` (longest prefix), if any. */
export function locateKey(source: string, path: KeyPath): number | undefined {
  const want = path.map(String).join("\u0000");
  let bestLine: number | undefined;
  let bestDepth = 0;
  const consider = (full: (string | number)[], line: number) => {
    const key = full.map(String);
    const depth = commonPrefix(key, path.map(String));
    if (depth === key.length && depth > bestDepth) [bestLine, bestDepth] = [line, depth];
    return key.join("\u0000") === want;
  };

  const arrayCounts = new Map<string, number>();
  let table: (string | number)[] = [];
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].replace(/#.*$/, "").trim();
    const header = /^\[(\[)?\s*([^\]]+?)\s*\]\]?$/.exec(text);
    if (header) {
      table = resolveHeader(splitKey(header[2]), Boolean(header[1]), arrayCounts);
      if (consider(table, i + 1)) return i + 1;
      continue;
    }
    const kv = /^([A-Za-z0-9_.\-"' ]+?)\s*=/.exec(text);
    if (kv && consider([...table, ...splitKey(kv[1])], i + 1)) return i + 1;
  }
  return bestLine;
}

function splitKey(key: string): string[] {
  return key.split(".").map((k) => k.trim().replace(/^["']|["']$/g, ""));
}

function resolveHeader(parts: string[], isArray: boolean, counts: Map<string, number>): (string | number)[] {
  const out: (string | number)[] = [];
  for (let j = 0; j < parts.length; j++) {
    out.push(parts[j]);
    const id = out.join(".");
    const last = j === parts.length - 1;
    if (last && isArray) {
      const n = counts.get(id) ?? 0;
      counts.set(id, n + 1);
      out.push(n);
    } else if (counts.has(id)) {
      out.push(counts.get(id)! - 1);
    }
  }
  return out;
}

function commonPrefix(a: string[], b: string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
