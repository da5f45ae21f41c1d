/**
 * Takes one snapshot of the database it is given (control/snapshot.ts), on
 * its own read-only connection, and hands back the bytes.
 */

import { DatabaseSync } from "node:sqlite";
import { dumpState, encodeSnapshot, type WorkerAnswer } from "./snapshot.ts";

const worker = self as unknown as {
  onmessage: (e: MessageEvent<{ path: string }>) => void;
  postMessage(answer: WorkerAnswer, transfer?: Transferable[]): void;
};

worker.onmessage = (e) => {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(e.data.path, { readOnly: true });
    const statement = (text: string) => db!.prepare(text);
    // One read transaction: the tables and the applied index as one commit left them.
    db.exec("BEGIN");
    const taken = encodeSnapshot(dumpState(statement));
    db.exec("COMMIT");
    worker.postMessage(taken, [taken.data.buffer as ArrayBuffer]);
  } catch (err) {
    worker.postMessage({ error: (err as Error).message ?? String(err) });
  } finally {
    db?.close();
  }
};
