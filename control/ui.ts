/**
 * The web dashboard at `/ui` on the API port: a page and its script, with
 * no data in them. The browser asks for the token once and keeps it in the
 * tab's session storage; everything shown comes from the API with it (so a
 * page loaded without the token shows nothing). The script builds the page
 * with text nodes only: what services log cannot become markup.
 */

import { UI_CSS, UI_JS } from "./ui_assets.ts";

const HEADERS = {
  // Only this origin's script and style; no frames (clickjacking), no referrer, no sniffing.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache",
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orca</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header><h1>Orca</h1><span id="who"></span><button id="signout" hidden>Sign out</button></header>
<main>
<section id="signin" hidden>
  <h2>Sign in</h2>
  <p>The cluster token is in <code>$ORCA_HOME/cluster.token</code> on a server. It stays in this tab only.</p>
  <form id="signin-form"><input id="token" type="password" autocomplete="off" placeholder="cluster token" required>
  <button type="submit">Sign in</button></form>
  <p id="signin-error" class="error"></p>
</section>
<div id="board" hidden>
  <section><h2>Requests <small id="rate"></small></h2><svg id="chart" viewBox="0 0 600 80" preserveAspectRatio="none"></svg></section>
  <section><h2>Services</h2><table id="services"><thead><tr><th>service</th><th>runtime</th><th>routes</th>
    <th>state</th><th>version</th><th>replicas</th><th>req/s</th><th>errors</th></tr></thead><tbody></tbody></table></section>
  <section id="detail" hidden><h2>Logs of <span id="detail-name"></span> <small>(following)</small></h2>
    <pre id="logs"></pre><h3>Cron runs</h3><table id="runs"><thead><tr><th>scheduled</th><th>trigger</th>
    <th>result</th><th>ms</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Nodes</h2><table id="nodes"><thead><tr><th>node</th><th>address</th><th>role</th><th>memory</th>
    <th>cpu</th><th>GPUs</th><th>replicas</th><th>state</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Queues</h2><table id="queues"><thead><tr><th>topic</th><th>consumer</th><th>pending</th>
    <th>dead letters</th><th>last error</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Deploy history</h2><table id="history"><thead><tr><th>deploy</th><th>when</th><th>service</th>
    <th>change</th><th>version</th><th>by</th><th></th></tr></thead><tbody></tbody></table></section>
  <p id="error" class="error"></p>
</div>
</main>
</body>
</html>
`;

/** The answer to a request under `/ui`, or undefined for another path. */
export function uiResponse(request: Request, pathname: string): Response | undefined {
  if (pathname !== "/ui" && !pathname.startsWith("/ui/")) return undefined;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("the dashboard is read with GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const asset = pathname === "/ui" || pathname === "/ui/"
    ? { body: PAGE, type: "text/html; charset=utf-8" }
    : pathname === "/ui/app.js"
    ? { body: UI_JS, type: "text/javascript; charset=utf-8" }
    : pathname === "/ui/app.css"
    ? { body: UI_CSS, type: "text/css; charset=utf-8" }
    : undefined;
  if (!asset) return new Response("not found\n", { status: 404, headers: HEADERS });
  return new Response(request.method === "HEAD" ? null : asset.body, {
    headers: { ...HEADERS, "content-type": asset.type },
  });
}
