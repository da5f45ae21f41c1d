/**
 * Cron firings: the next instant a schedule (config/cron.ts) fires, in its
 * time zone, DST included. Pure: no clock is read here; callers pass the
 * instant to start from.
 */

import type { CronSchedule } from "../config/mod.ts";

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallAt(ms: number, tz: string): Wall {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(ms)) if (part.type !== "literal") p[part.type] = Number(part.value);
  const weekday = new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay();
  return { year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute, second: p.second, weekday };
}

/** Offset of `tz` from UTC at instant `ms`, in ms. */
function offsetAt(ms: number, tz: string): number {
  const w = wallAt(ms, tz);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant of a wall time in `tz` (fields may overflow: month 13 is next
 * January). Ambiguous (fall back): the first occurrence. Nonexistent (spring
 * forward): the later guess, which lands just past the gap.
 */
function instantOf(tz: string, y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number {
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const candidates = [offsetAt(wall - 50_400_000, tz), offsetAt(wall + 50_400_000, tz)].map((o) => ({
    at: wall - o,
    o,
  }));
  const valid = candidates.filter((c) => offsetAt(c.at, tz) === c.o).map((c) => c.at);
  return valid.length > 0 ? Math.min(...valid) : Math.max(...candidates.map((c) => c.at));
}

/** True when this instant's wall time already occurred earlier (the repeated hour of a fall-back). */
function isRepeatedWallTime(ms: number, tz: string): boolean {
  const now = offsetAt(ms, tz);
  const before = offsetAt(ms - 86_400_000, tz);
  if (before <= now) return false;
  const earlier = ms - (before - now);
  return offsetAt(earlier, tz) === before;
}

/** The first firing strictly after `after` (ms since epoch), or undefined if none within ~8 years. */
export function nextFire(s: CronSchedule, after: number): number | undefined {
  const tz = s.timeZone;
  const unit = s.hasSeconds ? 1000 : 60_000;
  let t = Math.floor(after / unit) * unit + unit;
  const limit = after + 8 * 366 * 86_400_000;
  while (t <= limit) {
    const w = wallAt(t, tz);
    let next: number | undefined;
    if (!s.months.has(w.month)) next = instantOf(tz, w.year, w.month + 1, 1);
    else if (!dayMatches(s, w)) next = instantOf(tz, w.year, w.month, w.day + 1);
    // Within a day, step in real time so no real hour is skipped when clocks go back.
    else if (!s.hours.has(w.hour)) next = t + ((59 - w.minute) * 60 + 60 - w.second) * 1000;
    else if (!s.minutes.has(w.minute)) next = t + (60 - w.second) * 1000;
    else if (!s.seconds.has(w.second)) next = t + 1000;
    else if (!s.anyHour && isRepeatedWallTime(t, tz)) next = t + unit;
    else return t;
    t = Math.max(next, t + 1000);
    if (!s.hasSeconds) t = Math.ceil(t / 60_000) * 60_000;
  }
  return undefined;
}

function dayMatches(s: CronSchedule, w: Wall): boolean {
  const dom = s.days.has(w.day);
  const dow = s.weekdays.has(w.weekday);
  if (s.anyDay && s.anyWeekday) return true;
  if (s.anyDay) return dow;
  if (s.anyWeekday) return dom;
  return dom || dow;
}
