/**
 * The worker behind WorkerLogStore (raft/worker_store.ts): it owns the SQLite
 * store and does its writes, one request at a time in the order sent, so that
 * an fsync blocks this thread and never the node's event loop.
 */

/// <reference lib="deno.worker" />

import { SqliteLogStore } from "./sqlite_store.ts";
import type { Snapshot, StoreWrite } from "./types.ts";

/** A write the store's thread asks for. */
export type WorkerRequest =
  | { id: number; op: "persist"; write: StoreWrite }
  | { id: number; op: "saveSnapshot"; snapshot: Snapshot }
  | { id: number; op: "compact"; upTo: number }
  | { id: number; op: "close" };

export type WorkerReply = { id: number; error?: string };

let store: SqliteLogStore | undefined;

self.onmessage = async (e: MessageEvent<{ path: string } | WorkerRequest>) => {
  const msg = e.data;
  if ("path" in msg) {
    store = new SqliteLogStore(msg.path);
    return;
  }
  try {
    if (msg.op === "persist") await store!.persist(msg.write);
    else if (msg.op === "saveSnapshot") await store!.saveSnapshot(msg.snapshot);
    else if (msg.op === "compact") await store!.compact(msg.upTo);
    else {
      store!.close();
      store = undefined;
    }
    self.postMessage({ id: msg.id } satisfies WorkerReply);
  } catch (err) {
    // Sent back as text: the caller stops the node, whatever the error was.
    self.postMessage({ id: msg.id, error: String(err) } satisfies WorkerReply);
  }
};
