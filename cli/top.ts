/**
 * `orca top`: the cluster live in the terminal, redrawn every 800 ms: the
 * services (state, version, replicas, req/s and errors/s from the server's
 * proxy), the nodes, and the recent logs of the service selected with the
 * arrow keys (or j/k). q or Ctrl-C leaves, restoring the terminal. `--once`
 * prints one frame and exits (for a pipe, a script, a test).
 */

import type { ServiceStatus } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command } from "./command.ts";
import { escapeControls } from "./terminal.ts";

const REFRESH_MS = 800;

interface NodeRow {
  id: string;
  address: string;
  role: string;
  leader?: boolean;
  replicas?: number;
  error?: string;
  drain?: boolean;
  capacity?: { memory: number; cpuMillis: number };
}

/** What one frame shows. */
export interface TopModel {
  server: string;
  services: ServiceStatus[];
  nodes: NodeRow[];
  /** Requests and errors per second by service, since the last frame. */
  rates: Map<string, { rps: number; errors: number }>;
  selected: number;
  logs: string[];
  error?: string;
}

export const topCommand: Command = {
  name: "top",
  summary: "Watch services, nodes, request rates and logs live in the terminal (q quits).",
  usage: "orca top [--once]",
  flags: ["--once           print one frame and exit", ...clientFlags],
  options: { ...clientOptions, once: { type: "boolean" } },
  maxArgs: 0,
  async run(values) {
    const client = await Client.fromFlags(values);
    const source = new TopSource(client);
    if (values.once || !Deno.stdout.isTerminal()) {
      await source.refresh(0);
      // A second look a moment later gives rates.
      await new Promise((r) => setTimeout(r, 500));
      const model = await source.refresh(0);
      if (model.error) throw new OrcaError("unavailable", model.error);
      console.log(renderTop(model, 120, 40).join("\n"));
      return 0;
    }
    if (!Deno.stdin.isTerminal()) throw new OrcaError("usage", "orca top needs a terminal for its keys; try --once");
    return await live(source);
  },
};

/** Reads the cluster's state from the API, keeping the last counters to compute rates. */
class TopSource {
  readonly #client: Client;
  #last?: { at: number; counts: Map<string, { total: number; errors: number }> };
  #model?: TopModel;

  constructor(client: Client) {
    this.#client = client;
  }

  async refresh(selected: number): Promise<TopModel> {
    try {
      const [{ services }, { nodes }, metrics] = await Promise.all([
        this.#client.json<{ services: ServiceStatus[] }>("/services"),
        this.#client.json<{ nodes: NodeRow[] }>("/nodes"),
        this.#client.fetch("/metrics").then((r) => r.text()),
      ]);
      const now = { at: Date.now(), counts: counters(metrics) };
      const rates = new Map<string, { rps: number; errors: number }>();
      if (this.#last) {
        const secs = Math.max(0.001, (now.at - this.#last.at) / 1000);
        for (const [service, c] of now.counts) {
          const p = this.#last.counts.get(service) ?? { total: 0, errors: 0 };
          rates.set(service, {
            rps: Math.max(0, c.total - p.total) / secs,
            errors: Math.max(0, c.errors - p.errors) / secs,
          });
        }
      }
      this.#last = now;
      const index = Math.min(Math.max(0, selected), Math.max(0, services.length - 1));
      const chosen = services[index];
      const logs = chosen ? await this.#logs(chosen) : [];
      this.#model = { server: this.#client.base, services, nodes, rates, selected: index, logs };
    } catch (err) {
      const kept = this.#model ?? { server: this.#client.base, services: [], nodes: [], rates: new Map(), logs: [] };
      this.#model = { ...kept, selected, error: (err as Error).message };
    }
    return this.#model;
  }

  async #logs(s: ServiceStatus): Promise<string[]> {
    const res = await this.#client.fetch(`/services/${s.project}/${s.name}/logs?tail=50`, {}, [400, 404]);
    if (!res.ok) {
      await res.body?.cancel();
      return ["(no replica of it on this server to read logs from)"];
    }
    const lines = (await res.text()).split("\n").filter(Boolean);
    return lines.map((l) => {
      const { at, stream, text } = JSON.parse(l) as { at: number; stream: string; text: string };
      return `${new Date(at).toISOString().slice(11, 19)} ${stream.padEnd(6)} ${text}`;
    });
  }
}

/** Requests and 5xx by service, from the metrics' counters. */
export function counters(text: string): Map<string, { total: number; errors: number }> {
  const out = new Map<string, { total: number; errors: number }>();
  for (const line of text.split("\n")) {
    const m = /^orca_http_requests_total\{service="([^"]*)",code="(\dxx)"\} (\S+)$/.exec(line);
    if (!m) continue;
    const c = out.get(m[1]) ?? { total: 0, errors: 0 };
    c.total += Number(m[3]);
    if (m[2] === "5xx") c.errors += Number(m[3]);
    out.set(m[1], c);
  }
  return out;
}

/** One frame: lines no wider than `width`, at most `height` of them; what servers sent is escaped. */
export function renderTop(m: TopModel, width: number, height: number): string[] {
  const fit = (s: string) => {
    const safe = escapeControls(s);
    return safe.length > width ? safe.slice(0, width - 1) + "…" : safe;
  };
  const lines: string[] = [];
  const when = new Date().toISOString().slice(11, 19);
  lines.push(`orca top  ${m.server}  ${when}  (↑/↓ select, q quit)${m.error ? `  error: ${m.error}` : ""}`);
  lines.push("");
  lines.push(cols(["  SERVICE", "STATE", "VERSION", "REPLICAS", "REQ/S", "ERR/S"], [28, 10, 8, 10, 9, 8]));
  m.services.forEach((s, i) => {
    const key = `${s.project}/${s.name}`;
    const r = m.rates.get(key) ?? { rps: 0, errors: 0 };
    const replicas = s.placements
      ? `${s.placements.filter((p) => p.state === "ready").length}/${s.placements.length}`
      : "here";
    const mark = i === m.selected ? "> " : "  ";
    lines.push(
      cols([mark + key, s.state, `v${s.version}`, replicas, r.rps.toFixed(1), r.errors.toFixed(1)], [
        28,
        10,
        8,
        10,
        9,
        8,
      ]),
    );
  });
  if (m.services.length === 0) lines.push("  no services deployed");
  lines.push("");
  lines.push(cols(["  NODE", "ADDRESS", "ROLE", "REPLICAS", "STATE"], [12, 24, 16, 10, 20]));
  for (const n of m.nodes) {
    const role = n.role + (n.leader ? "*" : "");
    const health = n.error ? `unreachable` : n.drain ? "draining" : "ok";
    lines.push(cols([`  ${n.id.slice(0, 8)}`, n.address, role, String(n.replicas ?? 0), health], [12, 24, 16, 10, 20]));
  }
  const chosen = m.services[m.selected];
  lines.push("");
  lines.push(chosen ? `  LOGS of ${chosen.project}/${chosen.name}` : "  LOGS");
  const room = Math.max(0, height - lines.length);
  lines.push(...m.logs.slice(-room).map((l) => `  ${l}`));
  return lines.slice(0, height).map(fit);
}

function cols(values: string[], widths: number[]): string {
  return values.map((v, i) => i === values.length - 1 ? v : v.padEnd(widths[i])).join(" ");
}

/** The live view: the alternate screen, raw keys, a frame every REFRESH_MS; the terminal restored on the way out. */
async function live(source: TopSource): Promise<number> {
  const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s));
  let selected = 0;
  let stopped = false;
  let wake = () => {};
  const draw = async () => {
    const model = await source.refresh(selected);
    selected = model.selected;
    const { columns, rows } = Deno.consoleSize();
    out("\x1b[H\x1b[2J" + renderTop(model, columns, rows - 1).join("\r\n"));
  };
  Deno.stdin.setRaw(true);
  out("\x1b[?1049h\x1b[?25l");
  const keys = (async () => {
    const buf = new Uint8Array(16);
    while (!stopped) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const key = new TextDecoder().decode(buf.subarray(0, n));
      if (key === "q" || key === "\x03") stopped = true;
      else if (key === "\x1b[A" || key === "k") selected = Math.max(0, selected - 1);
      else if (key === "\x1b[B" || key === "j") selected++;
      wake();
    }
    stopped = true;
    wake();
  })();
  try {
    while (!stopped) {
      await draw();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, REFRESH_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    out("\x1b[?25h\x1b[?1049l");
    Deno.stdin.setRaw(false);
  }
  await Promise.race([keys, Promise.resolve()]);
  return 0;
}
