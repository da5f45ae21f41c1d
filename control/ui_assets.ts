/** The dashboard's style and script (ui.ts serves them). The script uses the API only, with the tab's token. */

export const UI_CSS = `
:root { --fg: #1d2430; --muted: #6a7385; --line: #e3e6ec; --accent: #1f6feb; --bad: #c62828; --ok: #2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: #f7f8fa; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1.2rem; background: #0f1b2d; color: #fff; }
header h1 { margin: 0; font-size: 1.2rem; }
header span { color: #aab4c5; flex: 1; }
main { padding: 1rem 1.2rem; max-width: 1200px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem; margin: 0 0 1rem; }
h2 { font-size: 1rem; margin: .2rem 0 .6rem; } h3 { font-size: .9rem; } small { color: var(--muted); font-weight: normal; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; }
td.num { font-variant-numeric: tabular-nums; }
a, button.link { color: var(--accent); cursor: pointer; background: none; border: 0; padding: 0; font: inherit; }
button { font: inherit; padding: .2rem .7rem; cursor: pointer; }
pre#logs { background: #0f1b2d; color: #d7dde8; padding: .6rem; height: 16rem; overflow: auto; margin: 0; font-size: 12px; }
.error { color: var(--bad); } .ok { color: var(--ok); } .bad { color: var(--bad); }
svg#chart { width: 100%; height: 80px; background: #fbfcfe; border: 1px solid var(--line); }
svg#chart polyline { fill: none; stroke-width: 1.5; }
input { font: inherit; padding: .25rem .5rem; width: 28rem; max-width: 100%; }
`;

export const UI_JS = `
"use strict";
const KEY = "orca-token";
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(KEY), timer: 0, samples: [], last: null, follow: null, selected: null };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}
function fill(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows);
}
function when(ms) { return new Date(ms).toLocaleString(); }
function bytes(n) {
  if (!n) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

async function api(path, init) {
  const res = await fetch("/api/v1" + path, Object.assign({}, init, {
    headers: Object.assign({ authorization: "Bearer " + state.token }, (init && init.headers) || {}),
  }));
  if (res.status === 401) { signOut("That token was refused."); throw new Error("unauthorized"); }
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try { message = (await res.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return res;
}

function signOut(why) {
  sessionStorage.removeItem(KEY);
  state.token = null;
  clearInterval(state.timer);
  if (state.follow) state.follow.abort();
  $("board").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = why || "";
}

async function signIn(token) {
  state.token = token;
  try {
    const health = await (await api("/health")).json();
    sessionStorage.setItem(KEY, token);
    $("who").textContent = "version " + health.version + " at " + location.host;
    $("signin").hidden = true;
    $("board").hidden = false;
    $("signout").hidden = false;
    refresh();
    state.timer = setInterval(refresh, 2000);
  } catch (err) {
    if (String(err.message) !== "unauthorized") $("signin-error").textContent = "Cannot reach the API: " + err.message;
  }
}

/** Requests and 5xx per service from the metrics' counters. */
function counters(text) {
  const out = {};
  for (const line of text.split("\\n")) {
    const m = /^orca_http_requests_total\\{service="([^"]*)",code="(\\dxx)"\\} (\\S+)$/.exec(line);
    if (!m) continue;
    const s = out[m[1]] || (out[m[1]] = { total: 0, errors: 0 });
    s.total += Number(m[3]);
    if (m[2] === "5xx") s.errors += Number(m[3]);
  }
  return out;
}

function rates(now) {
  const prev = state.last;
  state.last = now;
  const per = {};
  if (!prev) return per;
  const secs = (now.at - prev.at) / 1000;
  for (const [service, c] of Object.entries(now.counts)) {
    const p = prev.counts[service] || { total: 0, errors: 0 };
    per[service] = { rps: Math.max(0, c.total - p.total) / secs, errors: Math.max(0, c.errors - p.errors) / secs };
  }
  return per;
}

function chart(per) {
  let rps = 0, errors = 0;
  for (const r of Object.values(per)) { rps += r.rps; errors += r.errors; }
  state.samples.push({ rps, errors });
  if (state.samples.length > 60) state.samples.shift();
  const max = Math.max(1, ...state.samples.map((s) => s.rps));
  const line = (key, color) => {
    const p = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    p.setAttribute("points", state.samples.map((s, i) => (i * 10) + "," + (78 - (s[key] / max) * 74)).join(" "));
    p.setAttribute("stroke", color);
    return p;
  };
  $("chart").replaceChildren(line("rps", "#1f6feb"), line("errors", "#c62828"));
  $("rate").textContent = rps.toFixed(1) + " req/s, " + errors.toFixed(1) + " errors/s (this server's proxy)";
}

async function refresh() {
  try {
    const [services, nodes, queues, metrics] = await Promise.all([
      api("/services").then((r) => r.json()),
      api("/nodes").then((r) => r.json()),
      api("/queues").then((r) => r.json()),
      api("/metrics").then((r) => r.text()),
    ]);
    const per = rates({ at: Date.now(), counts: counters(metrics) });
    chart(per);
    fill("services", services.services.map((s) => {
      const key = s.project + "/" + s.name;
      const link = el("button", key, "link");
      link.addEventListener("click", () => select(key));
      const r = per[key] || { rps: 0, errors: 0 };
      const replicas = (s.placements || []).map((p) => p.node.slice(0, 8) + " " + p.state).join(", ") || "here";
      return row([link, s.runtime, (s.routes || []).join(" "), el("span", s.state, s.state === "running" ? "ok" : "bad"),
        "v" + s.version, replicas, r.rps.toFixed(1), r.errors.toFixed(1)]);
    }));
    fill("nodes", nodes.nodes.map((n) => row([n.id.slice(0, 8), n.address, n.role + (n.leader ? " (leader)" : ""),
      bytes(n.capacity && n.capacity.memory), n.capacity ? (n.capacity.cpuMillis / 1000) + " cores" : "-",
      (n.gpus || []).map((g) => g.count + "x " + (g.model || g.vendor)).join(", ") || "-", n.replicas,
      n.error ? el("span", n.error, "bad") : n.drain ? "draining" : el("span", "ok", "ok")])));
    const qrows = [];
    for (const t of queues.topics) {
      if (t.consumers.length === 0) qrows.push(row([t.topic, "(none)", t.retained, 0, ""]));
      for (const c of t.consumers) qrows.push(row([t.topic, c.consumer, c.pending, c.dead, c.lastError || ""]));
    }
    fill("queues", qrows);
    if (Date.now() - (state.historyAt || 0) > 5000) await history();
    if (state.selected) await runs(state.selected);
    $("error").textContent = "";
  } catch (err) {
    if (String(err.message) !== "unauthorized") $("error").textContent = "Refresh failed: " + err.message;
  }
}

async function history() {
  state.historyAt = Date.now();
  const { history } = await (await api("/history?limit=20")).json();
  fill("history", history.map((h) => {
    const back = el("button", "Roll back");
    back.addEventListener("click", () => rollback(h.service));
    return row([h.deploy, when(h.at), h.service, h.change, h.version ? "v" + h.version : "", h.origin,
      h.change === "removed" ? "" : back]);
  }));
}

async function rollback(service) {
  if (!confirm("Deploy the version before the current one of " + service + " again?")) return;
  const [project, name] = service.split("/");
  try {
    const res = await (await api("/services/" + project + "/" + name + "/rollback", { method: "POST", body: "{}" }))
      .json();
    $("error").textContent = "";
    alert(service + ": back to v" + res.to + " (deploy " + res.id + ")");
    await history();
  } catch (err) {
    $("error").textContent = "Rollback failed: " + err.message;
  }
}

async function runs(service) {
  const [project, name] = service.split("/");
  const { runs } = await (await api("/services/" + project + "/" + name + "/runs?limit=10")).json();
  fill("runs", runs.map((r) => row([when(r.scheduledAt), r.trigger, el("span", r.status, r.status === "ok" ? "ok" : "bad"),
    r.durationMs])));
}

/** Follows a service's logs: the API's NDJSON stream, read as it comes. */
async function select(service) {
  if (state.follow) state.follow.abort();
  state.selected = service;
  const follow = new AbortController();
  state.follow = follow;
  $("detail").hidden = false;
  $("detail-name").textContent = service;
  const logs = $("logs");
  logs.replaceChildren();
  const [project, name] = service.split("/");
  try {
    await runs(service);
    const res = await api("/services/" + project + "/" + name + "/logs?follow=1&tail=200", { signal: follow.signal });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const lines = (rest + value).split("\\n");
      rest = lines.pop();
      for (const line of lines) {
        if (!line) continue;
        const l = JSON.parse(line);
        logs.appendChild(el("div", new Date(l.at).toLocaleTimeString() + " " + l.stream + " " + l.text));
      }
      while (logs.childNodes.length > 500) logs.removeChild(logs.firstChild);
      logs.scrollTop = logs.scrollHeight;
    }
  } catch (err) {
    if (err.name !== "AbortError" && String(err.message) !== "unauthorized") {
      logs.appendChild(el("div", "(logs: " + err.message + ")", "error"));
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token").value.trim());
  });
  $("signout").addEventListener("click", () => signOut());
  if (state.token) signIn(state.token); else signOut();
});
`;
