/**
 * A linearizability checker for key-value histories (Wing & Gong's search
 * with Lowe's memoization), one register per key: is there a total order of
 * the operations that respects real time (an operation that completed before
 * another began comes first) and register semantics (a read returns the last
 * write, or null)? An operation without a response (timed out, crashed) may
 * have taken effect at any point after it began, or never.
 */

export interface Operation {
  key: string;
  kind: "put" | "get";
  /** The value written (put). */
  value?: string;
  /** What a get returned (null: nothing written yet). */
  output?: string | null;
  /** When the client invoked it. */
  invoke: number;
  /** When the client saw the answer; absent if it never did. */
  response?: number;
}

export type Verdict = { ok: true } | { ok: false; key: string };

export function checkLinearizable(history: readonly Operation[]): Verdict {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  for (const [key, ops] of byKey) if (!checkRegister(ops)) return { ok: false, key };
  return { ok: true };
}

/** One register's history. */
function checkRegister(input: readonly Operation[]): boolean {
  const ops = [...input].sort((a, b) => a.invoke - b.invoke);
  const n = ops.length;
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  const respond = (o: Operation) => o.response ?? Infinity;

  const search = (state: string | null, left: number): boolean => {
    // Every completed operation is placed: pending ones may never have happened.
    if (left === 0 || ops.every((o, i) => done[i] || o.response === undefined)) return true;
    const memo = `${done.join("")}|${state}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    // Candidates: operations that began before every remaining operation's response.
    let minResponse = Infinity;
    for (let i = 0; i < n; i++) if (!done[i]) minResponse = Math.min(minResponse, respond(ops[i]));
    for (let i = 0; i < n; i++) {
      const o = ops[i];
      if (done[i] || o.invoke > minResponse) continue;
      let next: string | null;
      if (o.kind === "put") next = o.value ?? null;
      else {
        // A get without a response told no one anything: it fits anywhere.
        if (o.response !== undefined && o.output !== state) continue;
        next = state;
      }
      done[i] = 1;
      if (search(next, left - 1)) return true;
      done[i] = 0;
    }
    return false;
  };
  return search(null, n);
}
