/**
 * The Transport between Raft processes: WebSockets, one outgoing connection
 * per peer (this node's messages to it) and one incoming from each peer (its
 * messages here). A peer proves it belongs to the cluster with the cluster
 * token when it connects (compared in constant time); without it there is no
 * socket. Messages are binary (raft/codec.ts), and all those sent to a peer in
 * one synchronous stretch (one Ready) go in one frame.
 *
 * Sending never blocks the core: a message to a peer that is down or slow is
 * queued up to a bound and dropped past it, as Raft tolerates loss. A peer
 * that is down is redialed with exponential backoff.
 *
 * A frame larger than a WebSocket message may be (a snapshot of a large
 * state: Deno's server takes at most 64 MiB) goes in pieces: a text message
 * announcing how many and how many bytes, then the pieces, put back together
 * on arrival up to a bound.
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { CodecError, decodeFrame, encodeFrame } from "./codec.ts";
import type { Message } from "./messages.ts";
import type { Transport } from "./types.ts";

/** The path peers connect to. */
export const raftPath = "/raft";

export interface WebSocketTransportOptions {
  id: string;
  /** The cluster token every peer presents. */
  token: string;
  /** Each peer's address (`host:port`, or a `ws://` URL): where this node dials it. `setPeers` changes them. */
  peers: Record<string, string>;
  /** The path peers serve the transport at (default `raftPath`). */
  path?: string;
  /** Told of each connection refused: a wrong token, or a peer id this node does not know. */
  onRefused?: (from: string, why: "token" | "unknown peer") => void;
  /** Most messages waiting for one peer (disconnected, or its socket's buffer full) before new ones are dropped. */
  maxQueue?: number;
  /** Bytes a socket may hold unsent before what is sent to it is dropped. */
  maxBuffered?: number;
  /** Redial delay after a failed connection: doubles from `minBackoffMs` up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** The largest WebSocket message sent: a larger frame goes in pieces of this size (default 8 MiB). */
  pieceBytes?: number;
  /** The largest frame taken from a peer, in pieces (default 2 GiB): a peer announcing more is disconnected. */
  maxFrameBytes?: number;
}

/** What the transport did, for stats and tests. */
export interface TransportStats {
  framesSent: number;
  messagesSent: number;
  messagesDropped: number;
  messagesReceived: number;
  /** Connections refused for a missing or wrong token, or an unknown peer id. */
  rejected: number;
}

interface Peer {
  id: string;
  url: string;
  socket?: WebSocket;
  open: boolean;
  queue: Message[];
  backoff: number;
  timer?: ReturnType<typeof setTimeout>;
}

export class WebSocketTransport implements Transport<Message> {
  readonly stats: TransportStats = {
    framesSent: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesReceived: 0,
    rejected: 0,
  };
  readonly #opts: Required<WebSocketTransportOptions>;
  readonly #peers = new Map<string, Peer>();
  /** Connections peers opened to this node, with who opened them. */
  readonly #incoming = new Map<WebSocket, string>();
  readonly #tokenDigest: Uint8Array;
  #handler: (from: string, message: Message) => void = () => {};
  /** When each peer's last frame arrived (`performance.now()`). */
  readonly #heard = new Map<string, number>();
  #flushScheduled = false;
  #closed = false;

  constructor(opts: WebSocketTransportOptions) {
    this.#opts = {
      maxQueue: 4096,
      maxBuffered: 16 << 20,
      minBackoffMs: 25,
      maxBackoffMs: 500,
      pieceBytes: 8 << 20,
      maxFrameBytes: 2 ** 31,
      path: raftPath,
      onRefused: () => {},
      ...opts,
    };
    this.#tokenDigest = _digest(opts.token);
    this.setPeers(opts.peers);
  }

  /**
   * Makes the peers exactly `peers` (membership changed): new ones are dialed, gone ones disconnected, and one
   * whose address changed is redialed there. This node's own id is ignored.
   */
  setPeers(peers: Record<string, string>): void {
    if (this.#closed) return;
    const urls = new Map<string, string>();
    for (const [id, addr] of Object.entries(peers)) {
      if (id === this.#opts.id) continue;
      const base = addr.includes("://") ? addr : `ws://${addr}`;
      urls.set(id, new URL(this.#opts.path, base).href);
    }
    for (const [id, peer] of this.#peers) {
      if (urls.get(id) === peer.url) continue;
      this.#peers.delete(id);
      clearTimeout(peer.timer);
      peer.socket?.close();
    }
    // A peer removed is heard no more either.
    for (const [socket, from] of this.#incoming) if (!urls.has(from)) socket.close();
    for (const [id, url] of urls) {
      if (this.#peers.has(id)) continue;
      const peer: Peer = { id, url, open: false, queue: [], backoff: 0 };
      this.#peers.set(id, peer);
      this.#dial(peer);
    }
  }

  send(to: string, message: Message): void {
    const peer = this.#peers.get(to);
    if (!peer || this.#closed) return;
    if (peer.queue.length >= this.#opts.maxQueue) {
      this.stats.messagesDropped++;
      return;
    }
    peer.queue.push(message);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Milliseconds since `peer`'s last message arrived; undefined if none has since this transport started. */
  sinceHeard(peer: string): number | undefined {
    const at = this.#heard.get(peer);
    return at === undefined ? undefined : performance.now() - at;
  }

  onMessage(handler: (from: string, message: Message) => void): void {
    this.#handler = handler;
  }

  /**
   * Serves a peer's connection (mount it on the node's HTTP server at `raftPath`): upgrades it to a WebSocket
   * if the peer names itself (`x-raft-from`) and presents the cluster token (`authorization: Bearer ...`).
   */
  handle(req: Request): Response {
    const from = req.headers.get("x-raft-from") ?? "";
    const presented = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1] ?? "";
    // The token is checked even for an unknown peer id, so timing tells nothing about which ids exist.
    const tokenOk = timingSafeEqual(_digest(presented), this.#tokenDigest);
    if (!tokenOk || !this.#peers.has(from) || this.#closed) {
      this.stats.rejected++;
      if (!this.#closed) this.#opts.onRefused?.(from, tokenOk ? "unknown peer" : "token");
      return new Response("raft: unauthenticated peer\n", { status: 401 });
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("raft: expected a WebSocket upgrade\n", { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    this.#incoming.set(socket, from);
    socket.onclose = () => this.#incoming.delete(socket);
    const pieces = new Pieces(this.#opts.maxFrameBytes);
    socket.onmessage = (e) => {
      const frame = pieces.take(e.data);
      if (typeof frame === "string") return socket.close(1007, frame);
      if (frame) this.#receive(from, socket, frame);
    };
    return response;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closing: Promise<void>[] = [];
    const closeSocket = (s: WebSocket) => {
      if (s.readyState === WebSocket.CLOSED) return;
      closing.push(new Promise((resolve) => s.addEventListener("close", () => resolve(), { once: true })));
      s.close();
    };
    for (const peer of this.#peers.values()) {
      clearTimeout(peer.timer);
      if (peer.socket) closeSocket(peer.socket);
    }
    for (const s of this.#incoming.keys()) closeSocket(s);
    // A socket whose peer is gone may never report its close: do not wait on it for long.
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 500))]);
  }

  #receive(from: string, socket: WebSocket, frame: Uint8Array): void {
    let messages: Message[];
    try {
      messages = decodeFrame(frame);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      return socket.close(1007, "not a raft frame");
    }
    if (messages.length > 0) this.#heard.set(from, performance.now());
    for (const m of messages) {
      // A peer speaks only for itself, and only to this node.
      if (m.from !== from || m.to !== this.#opts.id) continue;
      this.stats.messagesReceived++;
      this.#handler(from, m);
    }
  }

  /** Sends what is queued now (a caller about to block its thread, e.g. on an fsync, need not hold messages back). */
  flush(): void {
    this.#flushScheduled = false;
    for (const peer of this.#peers.values()) {
      if (!peer.open || peer.queue.length === 0) continue;
      const socket = peer.socket!;
      const messages = peer.queue;
      peer.queue = [];
      if (socket.bufferedAmount > this.#opts.maxBuffered) {
        this.stats.messagesDropped += messages.length;
        continue;
      }
      const frame = encodeFrame(messages);
      const piece = this.#opts.pieceBytes;
      if (frame.length <= piece) socket.send(frame);
      else {
        const count = Math.ceil(frame.length / piece);
        socket.send(JSON.stringify({ pieces: count, bytes: frame.length }));
        for (let i = 0; i < count; i++) socket.send(frame.subarray(i * piece, (i + 1) * piece));
      }
      this.stats.framesSent++;
      this.stats.messagesSent += messages.length;
    }
  }

  #dial(peer: Peer): void {
    if (this.#closed) return;
    const socket = new WebSocket(peer.url, {
      headers: { authorization: `Bearer ${this.#opts.token}`, "x-raft-from": this.#opts.id },
    });
    socket.binaryType = "arraybuffer";
    peer.socket = socket;
    socket.onopen = () => {
      peer.open = true;
      peer.backoff = 0;
      this.flush();
    };
    // This side only sends; a peer has nothing to say on this connection.
    socket.onmessage = () => {};
    // A failed or broken connection reports an error and then its close, where the redial is: nothing to do here.
    socket.onerror = () => {};
    socket.onclose = () => {
      peer.open = false;
      peer.socket = undefined;
      // What waited for this peer is lost, as on a network that drops it; the next messages go out when it is back.
      this.stats.messagesDropped += peer.queue.length;
      peer.queue = [];
      if (this.#closed || this.#peers.get(peer.id) !== peer) return; // closed, or no longer a peer
      const { minBackoffMs, maxBackoffMs } = this.#opts;
      peer.backoff = Math.min(maxBackoffMs, peer.backoff === 0 ? minBackoffMs : peer.backoff * 2);
      // Jitter, so peers that lost each other at once do not redial in lockstep.
      peer.timer = setTimeout(() => this.#dial(peer), peer.backoff * (0.5 + Math.random() / 2));
    };
  }
}

/**
 * Puts frames sent in pieces back together: `take` answers a whole frame, undefined while pieces are missing, or
 * why the peer broke the protocol (a text that is not an announcement, more bytes than announced or allowed).
 */
export class Pieces {
  readonly #max: number;
  #pending?: { pieces: number; bytes: number; got: Uint8Array[]; size: number };

  constructor(maxFrameBytes: number) {
    this.#max = maxFrameBytes;
  }

  take(data: unknown): Uint8Array | string | undefined {
    if (typeof data === "string") {
      if (this.#pending) return "an announcement while pieces were missing";
      let announced: { pieces?: unknown; bytes?: unknown };
      try {
        announced = JSON.parse(data);
      } catch {
        return "not a raft frame";
      }
      const { pieces, bytes } = announced;
      if (!Number.isSafeInteger(pieces) || !Number.isSafeInteger(bytes) || (pieces as number) < 1) {
        return "not an announcement of pieces";
      }
      if ((bytes as number) > this.#max) return `a frame of ${bytes} bytes is over ${this.#max}`;
      this.#pending = { pieces: pieces as number, bytes: bytes as number, got: [], size: 0 };
      return undefined;
    }
    if (!(data instanceof ArrayBuffer)) return "binary frames only";
    const piece = new Uint8Array(data);
    const p = this.#pending;
    if (!p) return piece;
    p.got.push(piece);
    p.size += piece.length;
    if (p.size > p.bytes) return "more bytes than announced";
    if (p.got.length < p.pieces) return undefined;
    this.#pending = undefined;
    if (p.size !== p.bytes) return "fewer bytes than announced";
    const frame = new Uint8Array(p.size);
    let at = 0;
    for (const g of p.got) {
      frame.set(g, at);
      at += g.length;
    }
    return frame;
  }
}

/** SHA-256 of a token: equal lengths for the constant-time comparison, whatever was presented. */
export function _digest(token: string): Uint8Array {
  return createHash("sha256").update(token).digest();
}
