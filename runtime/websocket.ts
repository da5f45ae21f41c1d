/**
 * WebSocket through the proxy: the client's upgrade is answered once the
 * upstream (a container replica) accepted its own, with the subprotocol it
 * chose; then every message goes across as it came (text or binary), and a
 * close on either side closes the other with its code and reason. A side
 * that does not keep up with what the other sends (more than 8 MiB waiting)
 * is closed, so a slow or hostile peer cannot grow the proxy's memory.
 */

/** Headers of the client's handshake that the upstream handshake makes anew. */
const HANDSHAKE = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"];
/** The most bytes waiting to be sent to one side before the bridge gives up on it. */
const MAX_BUFFERED = 8 * 2 ** 20;
/** Messages from the upstream that may wait for the client's side to open. */
const MAX_EARLY = 1024;

/** Whether `request` asks to become a WebSocket. */
export function isWebSocket(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * Connects to `url` (ws://) with `headers` (end to end, forwarding set), within `timeoutMs`, and answers `request`
 * with the upgrade. Throws when the upstream cannot be reached (`connect: ...`), so another replica may be tried.
 */
export async function bridgeWebSocket(
  url: string,
  request: Request,
  headers: Headers,
  timeoutMs: number,
): Promise<Response> {
  const protocols = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim())
    .filter(Boolean);
  const sent = new Headers(headers);
  for (const h of HANDSHAKE) sent.delete(h);
  sent.delete("host");
  const upstream = new WebSocket(url, { protocols, headers: sent });
  upstream.binaryType = "arraybuffer";
  const refused = await new Promise<string | undefined>((resolve, reject) => {
    const timer = setTimeout(() => {
      upstream.close();
      reject(new Error(`no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    upstream.onopen = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
    upstream.onerror = (e) => {
      clearTimeout(timer);
      const message = (e as ErrorEvent).message || "the WebSocket failed";
      // It answered, with something else than the upgrade: that is its answer, not a replica that is down.
      if (/status code/i.test(message)) resolve(message);
      else reject(new Error(`connect: ${message}`));
    };
  });
  if (refused !== undefined) {
    return Response.json({ error: "the upstream refused the WebSocket", detail: refused }, { status: 502 });
  }
  const { socket, response } = Deno.upgradeWebSocket(
    request,
    upstream.protocol ? { protocol: upstream.protocol } : {},
  );
  socket.binaryType = "arraybuffer";
  const early: (string | ArrayBuffer)[] = [];
  const pass = (to: WebSocket, data: string | ArrayBuffer) => {
    if (to.readyState !== WebSocket.OPEN) return;
    if (to.bufferedAmount > MAX_BUFFERED) return closeBoth(1000, "the other side does not keep up");
    to.send(data);
  };
  const closeBoth = (code: number, reason: string) => {
    for (const s of [socket, upstream]) {
      if (s.readyState === WebSocket.OPEN || s.readyState === WebSocket.CONNECTING) s.close(code, reason);
    }
  };
  upstream.onmessage = (e) => {
    if (socket.readyState === WebSocket.OPEN) return pass(socket, e.data);
    if (early.push(e.data) > MAX_EARLY) closeBoth(1000, "too many messages before the client was ready");
  };
  socket.onopen = () => {
    for (const data of early.splice(0)) pass(socket, data);
  };
  socket.onmessage = (e) => pass(upstream, e.data);
  // A close code a peer may send on (1000, 3000-4999) goes across as it is; others (1001, 1006...) as 1000, said.
  const relay = (to: WebSocket) => (e: CloseEvent) => {
    if (to.readyState !== WebSocket.OPEN && to.readyState !== WebSocket.CONNECTING) return;
    const sendable = e.code === 1000 || (e.code >= 3000 && e.code <= 4999);
    const reason = sendable ? e.reason : `closed (${e.code}${e.reason ? `: ${e.reason}` : ""})`;
    to.close(sendable ? e.code : 1000, truncate(reason));
  };
  socket.onclose = relay(upstream);
  upstream.onclose = relay(socket);
  socket.onerror = () => closeBoth(1000, "the client's connection failed");
  upstream.onerror = () => closeBoth(1000, "the upstream's connection failed");
  return response;
}

/** A close reason fits in 123 bytes of UTF-8. */
function truncate(reason: string): string {
  let out = reason;
  while (new TextEncoder().encode(out).length > 123) out = out.slice(0, -1);
  return out;
}
