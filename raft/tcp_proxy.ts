/**
 * Test helper: a TCP proxy one node dials another through, so a test can cut
 * the link (every connection through it is closed, new ones are refused at
 * once) and heal it, like a network partition between two processes.
 */

export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #open = new Set<Deno.TcpConn>();
  #cut = false;
  readonly #accepting: Promise<void>;

  constructor(target: { hostname: string; port: number }, hostname = "127.0.0.1") {
    this.#target = target;
    this.#listener = Deno.listen({ hostname, port: 0 });
    this.#accepting = this.#accept();
  }

  /** Where to dial to reach the target through this proxy. */
  get addr(): string {
    const { hostname, port } = this.#listener.addr;
    return `${hostname}:${port}`;
  }

  /** Closes every connection through the proxy, and refuses new ones until `heal`. */
  cut(): void {
    this.#cut = true;
    for (const c of this.#open) _closeQuietly(c);
    this.#open.clear();
  }

  heal(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#accepting;
  }

  #accept(): Promise<void> {
    return _acceptEach(this.#listener, (conn) => {
      if (this.#cut) _closeQuietly(conn);
      else this.#pipe(conn);
    });
  }

  async #pipe(inbound: Deno.TcpConn): Promise<void> {
    this.#open.add(inbound);
    let outbound: Deno.TcpConn;
    try {
      outbound = await Deno.connect(this.#target);
    } catch (err) {
      // The target is down: the dialer sees its connection closed, as it would without the proxy.
      if (!(err instanceof Deno.errors.ConnectionRefused)) throw err;
      this.#open.delete(inbound);
      return _closeQuietly(inbound);
    }
    if (this.#cut || !this.#open.has(inbound)) {
      this.#open.delete(inbound);
      _closeQuietly(inbound);
      return _closeQuietly(outbound);
    }
    this.#open.add(outbound);
    const done = () => {
      for (const c of [inbound, outbound]) {
        this.#open.delete(c);
        _closeQuietly(c);
      }
    };
    // Either direction ending (or failing, when cut) ends the connection.
    await Promise.race([_copy(inbound, outbound), _copy(outbound, inbound)]);
    done();
  }
}

async function _copy(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
  } catch (err) {
    // A connection closed under it (cut, or the other side gone) ends the copy; anything else is a bug.
    if (
      !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
        err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.Interrupted)
    ) throw err;
  }
}

function _closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err; // already closed
  }
}

/** Hands each connection `listener` accepts to `handle`, until the listener is closed. */
export async function _acceptEach(listener: Deno.TcpListener, handle: (conn: Deno.TcpConn) => void): Promise<void> {
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed
      throw err;
    }
    handle(conn);
  }
}
