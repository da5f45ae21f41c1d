/**
 * Orca's cron (config/cron.ts + triggers/cron.ts) against croner, the maintained library: the firings of both over
 * two years for expressions and zones chosen around DST changes (where they differ, and how), and the time each takes
 * for the same run of next firings. The README's cron section quotes what this prints.
 */

import { Cron } from "croner";
import { parseCron } from "../config/mod.ts";
import { nextFire } from "../triggers/cron.ts";

const EXPRESSIONS = ["0 * * * *", "30 * * * *", "30 2 * * *", "0 2 * * *", "*/20 1-3 * * *", "0 0 * * 0", "15 10 1 * *"]
  .concat(["0 */2 * * *", "0 0 1,15 * 1"]);
const ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Kolkata"];

export function benchCron(firings = 3000): string[] {
  let same = 0;
  const differ = new Map<string, string[]>();
  for (const expression of EXPRESSIONS) {
    for (const zone of ZONES) {
      const ours = parseCron(`${expression} ${zone}`);
      if ("error" in ours) throw new Error(ours.error);
      const croner = new Cron(expression, { timezone: zone, paused: true, legacyMode: true });
      let at = Date.parse("2026-01-01T00:00:00Z");
      for (let i = 0; i < firings; i++) {
        const a = nextFire(ours, at)!;
        const b = croner.nextRun(new Date(at))!.getTime();
        if (a === b) same++;
        else {
          const key = `${expression} ${zone}`;
          const seen = differ.get(key) ?? [];
          const wall = (ms: number) => new Date(ms).toLocaleString("sv", { timeZone: zone }).slice(5, 16);
          seen.push(`after ${wall(at)}: orca ${wall(a)}, croner ${wall(b)}`);
          differ.set(key, seen);
        }
        at = Math.min(a, b);
      }
    }
  }
  const lines = [`${same} firings the same, ${[...differ.values()].flat().length} different:`];
  for (const [key, seen] of differ) lines.push(`  ${key}: ${seen.length} (${seen.slice(0, 2).join("; ")})`);
  const ours = parseCron("*/15 * * * * Europe/Berlin");
  if ("error" in ours) throw new Error(ours.error);
  const croner = new Cron("*/15 * * * *", { timezone: "Europe/Berlin", paused: true });
  const time = (next: (at: number) => number) => {
    let at = Date.parse("2026-01-01T00:00:00Z");
    const start = performance.now();
    for (let i = 0; i < 20_000; i++) at = next(at);
    return performance.now() - start;
  };
  const oursMs = time((at) => nextFire(ours, at)!);
  const cronerMs = time((at) => croner.nextRun(new Date(at))!.getTime());
  lines.push(
    `20,000 next firings (*/15, Europe/Berlin): orca ${oursMs.toFixed(0)} ms, croner ${cronerMs.toFixed(0)} ms ` +
      `(${(cronerMs / oursMs).toFixed(2)}x)`,
  );
  return lines;
}
