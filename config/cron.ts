/**
 * Cron schedule syntax: 5 fields (minute hour day-of-month month day-of-week), 6
 * fields (seconds first), `@hourly`-style macros, and an optional IANA time
 * zone as the last word (`0 9 * * * Europe/Berlin`; default UTC). Abbreviations
 * (`EST`) are refused with a suggestion: they are not IANA names.
 *
 * DST: a local time that does not exist (spring forward) is skipped; a local
 * time that occurs twice (fall back) fires once, at its first occurrence,
 * unless the hour field is `*` (then every real hour fires).
 * This file parses and validates; triggers/cron.ts computes firings.
 */

export interface CronSchedule {
  source: string;
  timeZone: string;
  hasSeconds: boolean;
  seconds: ReadonlySet<number>;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  weekdays: ReadonlySet<number>;
  /** `*` in day-of-month / day-of-week: cron ORs the two day fields only when both are restricted. */
  anyDay: boolean;
  anyWeekday: boolean;
  anyHour: boolean;
}

const macros: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

const monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface FieldDef {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const fieldDefs: Record<string, FieldDef> = {
  second: { name: "second", min: 0, max: 59 },
  minute: { name: "minute", min: 0, max: 59 },
  hour: { name: "hour", min: 0, max: 23 },
  day: { name: "day-of-month", min: 1, max: 31 },
  month: { name: "month", min: 1, max: 12, names: monthNames },
  weekday: { name: "day-of-week", min: 0, max: 7, names: dayNames },
};

/** Parses a schedule, or returns an error naming the field at fault. */
export function parseCron(text: string): CronSchedule | { error: string } {
  let words = text.trim().split(/\s+/).filter(Boolean);
  let timeZone = "UTC";
  if (zonePosition(words)) {
    const zone = readTimeZone(words[words.length - 1]);
    if (typeof zone !== "string") return zone;
    timeZone = zone;
    words = words.slice(0, -1);
  }
  if (words.length === 1 && words[0].startsWith("@")) {
    const expanded = macros[words[0].toLowerCase()];
    if (!expanded) return { error: `unknown macro ${words[0]} (use one of ${Object.keys(macros).join(", ")})` };
    words = expanded.split(" ");
  }
  if (words.length !== 5 && words.length !== 6) {
    return {
      error:
        `a schedule has 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); got ${words.length}`,
    };
  }
  const hasSeconds = words.length === 6;
  const order = hasSeconds
    ? ["second", "minute", "hour", "day", "month", "weekday"]
    : ["minute", "hour", "day", "month", "weekday"];
  const sets: Record<string, Set<number>> = { second: new Set([0]) };
  for (let i = 0; i < order.length; i++) {
    const parsed = parseField(words[i], fieldDefs[order[i]]);
    if (typeof parsed === "string") return { error: parsed };
    sets[order[i]] = parsed;
  }
  if (sets.weekday.has(7)) sets.weekday.add(0);
  const schedule: CronSchedule = {
    source: text.trim(),
    timeZone,
    hasSeconds,
    seconds: sets.second,
    minutes: sets.minute,
    hours: sets.hour,
    days: sets.day,
    months: sets.month,
    weekdays: sets.weekday,
    anyDay: words[order.indexOf("day")] === "*" || words[order.indexOf("day")] === "?",
    anyWeekday: words[order.indexOf("weekday")] === "*" || words[order.indexOf("weekday")] === "?",
    anyHour: words[order.indexOf("hour")] === "*",
  };
  if (!canFire(schedule)) {
    return { error: `schedule ${JSON.stringify(text.trim())} never fires (e.g. day 31 in a month that has 30 days)` };
  }
  return schedule;
}

function parseField(text: string, def: FieldDef): Set<number> | string {
  const out = new Set<number>();
  const value = (s: string): number | undefined => {
    const byName = def.names?.indexOf(s.toLowerCase()) ?? -1;
    if (byName >= 0) return byName + (def.min === 1 ? 1 : 0);
    return /^\d+$/.test(s) ? Number(s) : undefined;
  };
  for (const part of text.split(",")) {
    const m = /^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(part);
    if (!m || (m[1] === "?" && def.name !== "day-of-month" && def.name !== "day-of-week")) {
      return `${def.name} field: cannot read ${JSON.stringify(part)} (use *, N, A-B, */N, A-B/N or lists with ",")`;
    }
    let lo = def.min, hi = def.max;
    if (m[1] !== "*" && m[1] !== "?") {
      const [a, b] = m[1].split("-");
      const va = value(a);
      const vb = b === undefined ? (m[2] ? def.max : va) : value(b);
      if (va === undefined || vb === undefined) {
        return `${def.name} field: ${JSON.stringify(part)} is not a number or name`;
      }
      [lo, hi] = [va, vb];
    }
    if (def.name === "day-of-week" && m[1] === "*") hi = 6;
    if (lo < def.min || hi > def.max) {
      return `${def.name} field: ${JSON.stringify(part)} is out of range ${def.min}-${def.max}`;
    }
    if (lo > hi) return `${def.name} field: range ${JSON.stringify(part)} goes backwards`;
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) return `${def.name} field: step in ${JSON.stringify(part)} must be at least 1`;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/**
 * Whether the last word is a time zone: after a macro, after six fields, or
 * after five when it is no day-of-week (`0 9 * * * EST`, not `0 0 9 * * MON`).
 */
function zonePosition(words: string[]): boolean {
  const last = words[words.length - 1];
  if (words.length < 2 || !/[A-Za-z]/.test(last)) return false;
  if (words.length === 2) return words[0].startsWith("@");
  if (words.length === 7) return true;
  return words.length === 6 && typeof parseField(last, fieldDefs.weekday) === "string";
}

/** Abbreviations people write for a zone, and the IANA name they most likely mean. */
const abbreviations: Record<string, string> = {
  EST: "America/New_York",
  EDT: "America/New_York",
  CST: "America/Chicago",
  CDT: "America/Chicago",
  MST: "America/Denver",
  MDT: "America/Denver",
  PST: "America/Los_Angeles",
  PDT: "America/Los_Angeles",
  AKST: "America/Anchorage",
  HST: "Pacific/Honolulu",
  BST: "Europe/London",
  WET: "Europe/Lisbon",
  CET: "Europe/Berlin",
  CEST: "Europe/Berlin",
  EET: "Europe/Athens",
  EEST: "Europe/Athens",
  MSK: "Europe/Moscow",
  JST: "Asia/Tokyo",
  KST: "Asia/Seoul",
  AEST: "Australia/Sydney",
  AEDT: "Australia/Sydney",
  NZST: "Pacific/Auckland",
};

/**
 * An IANA zone name (`Europe/Berlin`, `UTC`), canonical, or an error. Bare
 * abbreviations are refused even where Intl knows them: there `EST` is
 * Panama's fixed UTC-5 (no daylight saving), `BST` is Bangladesh and `IST`
 * India, rarely what was meant.
 */
function readTimeZone(word: string): string | { error: string } {
  const named = `time zone ${JSON.stringify(word.slice(0, 64))}`;
  if (/^(UTC|GMT|Z|Zulu)$/i.test(word)) return "UTC";
  if (word.includes("/")) {
    const zone = canonicalZone(word);
    if (zone) return zone;
    return { error: `unknown ${named}: not an IANA zone name (use one like Europe/Berlin or America/New_York)` };
  }
  const guess = abbreviations[word.toUpperCase()];
  return {
    error: `${named} is not an IANA zone name: ${
      guess ? `write a Region/City name, e.g. ${guess}` : "use one like Europe/Berlin or America/New_York"
    }`,
  };
}

function canonicalZone(tz: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone;
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/** Whether some month has one of the days (only matters when days are restricted and weekdays are not). */
function canFire(s: CronSchedule): boolean {
  if (s.anyDay || !s.anyWeekday) return true;
  const daysIn = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return [...s.months].some((m) => [...s.days].some((d) => d <= daysIn[m - 1]));
}
