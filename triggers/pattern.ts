/**
 * Event names are dotted (`orders.created`); patterns match them segment by
 * segment: `*` is exactly one segment, `**` any number (zero or more).
 * Matching runs the pattern as a set of states over the name's words, so it
 * takes at most (words of the pattern) x (words of the name) steps whatever
 * the input: no backtracking.
 */

import { eventNameError } from "../config/mod.ts";

/** Whether `name` is a valid event name (dotted words, at most 200 characters). */
export function validEventName(name: string): boolean {
  return eventNameError(name) === undefined;
}

export function matchEvent(pattern: string, name: string): boolean {
  const p = pattern.split(".");
  // at[i]: the first i words of the pattern can match the words read so far.
  let at = closure(p, [true, ...new Array<boolean>(p.length).fill(false)]);
  for (const word of name.split(".")) {
    const next = new Array<boolean>(p.length + 1).fill(false);
    for (let i = 0; i < p.length; i++) {
      if (!at[i]) continue;
      if (p[i] === "**") next[i] = true; // `**` takes this word and may take more
      else if (p[i] === "*" || p[i] === word) next[i + 1] = true;
    }
    at = closure(p, next);
    if (!at.includes(true)) return false;
  }
  return at[p.length];
}

/** A `**` may also match no word: a state before it reaches the state after it. */
function closure(p: string[], at: boolean[]): boolean[] {
  for (let i = 0; i < p.length; i++) if (at[i] && p[i] === "**") at[i + 1] = true;
  return at;
}
