/**
 * Test helper: a TCP proxy in front of one server's API that peers reach it
 * through (the server advertises the proxy's address). It reads the head of
 * each connection to learn which peer dialed (`x-raft-from`), so a test can
 * cut chosen peers off in both directions: `isolate(id)` on every proxy makes
 * `id` a partitioned minority of one. Connections are closed at once and new
 * ones refused until `heal`.
 */

import { _acceptEach } from "../raft/tcp_proxy.ts";

const HEAD_LIMIT = 16 * 1024;

export class PeerProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #open = new Map<Deno.TcpConn, string | undefined>();
  /** Peers whose connections are refused; `*`: every connection (the server behind is cut off). */
  readonly #cut = new Set<string>();
  readonly #accepting: Promise<void>;

  constructor(listen: { hostname: string; port: number }, target: { hostname: string; port: number }) {
    this.#target = target;
    this.#listener = Deno.listen(listen);
    this.#accepting = this.#accept();
  }

  /** Cuts the server behind this proxy off from everyone (`*`), or cuts off connections from peer `id`. */
  isolate(id: string): void {
    this.#cut.add(id);
    for (const [conn, from] of this.#open) {
      if (id === "*" || from === id) {
        this.#open.delete(conn);
        closeQuietly(conn);
      }
    }
  }

  heal(): void {
    this.#cut.clear();
  }

  async close(): Promise<void> {
    this.isolate("*");
    this.#listener.close();
    await this.#accepting;
  }

  #accept(): Promise<void> {
    return _acceptEach(this.#listener, (conn) => void this.#pipe(conn).catch(() => closeQuietly(conn)));
  }

  async #pipe(inbound: Deno.TcpConn): Promise<void> {
    // The request head says who dials (a peer names itself in x-raft-from; a client names no one).
    let head = new Uint8Array(0);
    const buf = new Uint8Array(4096);
    while (!new TextDecoder().decode(head).includes("\r\n\r\n") && head.length < HEAD_LIMIT) {
      const n = await inbound.read(buf);
      if (n === null) return closeQuietly(inbound);
      const next = new Uint8Array(head.length + n);
      next.set(head);
      next.set(buf.subarray(0, n), head.length);
      head = next;
    }
    const from = /\r\nx-raft-from: *([^\r\n]+)/i.exec(new TextDecoder().decode(head))?.[1].trim();
    if (this.#cut.has("*") || (from !== undefined && this.#cut.has(from))) return closeQuietly(inbound);
    const outbound = await Deno.connect(this.#target);
    this.#open.set(inbound, from);
    this.#open.set(outbound, from);
    await outbound.write(head);
    const copy = async (src: Deno.TcpConn, dst: Deno.TcpConn) => {
      try {
        await src.readable.pipeTo(dst.writable);
      } catch {
        // one side closed or was cut: the other goes too
      }
      closeQuietly(src);
      closeQuietly(dst);
    };
    await Promise.all([copy(inbound, outbound), copy(outbound, inbound)]);
    this.#open.delete(inbound);
    this.#open.delete(outbound);
  }
}

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
