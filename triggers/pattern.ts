/**
 * Event names are dotted (`orders.created`); patterns match them segment by
 * segment: `*` is exactly one segment, `**` any number (zero or more).
 */

const NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function validEventName(name: string): boolean {
  return NAME.test(name);
}

export function matchEvent(pattern: string, name: string): boolean {
  return matchParts(pattern.split("."), 0, name.split("."), 0);
}

function matchParts(p: string[], i: number, n: string[], j: number): boolean {
  while (i < p.length) {
    if (p[i] === "**") {
      for (let k = j; k <= n.length; k++) if (matchParts(p, i + 1, n, k)) return true;
      return false;
    }
    if (j >= n.length || (p[i] !== "*" && p[i] !== n[j])) return false;
    i++;
    j++;
  }
  return j === n.length;
}
