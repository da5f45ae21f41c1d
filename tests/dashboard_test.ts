/**
 * The web dashboard in a real browser (Debian's chromium, driven by puppeteer-core): sign in with the token, see the
 * services, follow a log line as it is written, see the nodes and queues, a wrong token refused, no console errors.
 * A screenshot is kept in test-artifacts/dashboard.png.
 */

import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { examplesDir, orca, startServer, writeProject } from "./harness.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
const ARTIFACTS = new URL("../test-artifacts/", import.meta.url).pathname;

Deno.test({
  name: "dashboard: sign in, services, a followed log line, nodes, queues; a wrong token refused; no console errors",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer();
    const dir = await writeProject({
      web: `[[service]]\nname = "hello"\nmodule = "${examplesDir}/services/hello-js/hello.wasm"\n` +
        `triggers = ["http:/js/*"]\n`,
    });
    assert.equal((await orca(server, "deploy", dir)).code, 0);
    assert.equal((await orca(server, "queue", "publish", "orders", "kept")).code, 0);
    let browser: Browser | undefined;
    const problems: string[] = [];
    try {
      browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 1400 });
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (err) => problems.push(`page: ${err}`));

      // Without the token the page shows the sign-in form and no data.
      await page.goto(`${server.apiUrl}/ui`, { waitUntil: "load" });
      await page.waitForSelector("#signin:not([hidden])");
      assert.equal(await page.evaluate('document.getElementById("board").hidden'), true);

      await signIn(page, "not-the-token-0123456789");
      await page.waitForFunction(shows("#signin-error", "refused"));
      problems.length = 0; // the browser logs the 401 itself

      await signIn(page, server.token);
      await page.waitForFunction(shows("#services tbody", "web/hello"));
      const nodes = await page.$eval("#nodes tbody", (e) => e.textContent!);
      assert.match(nodes, /voter \(leader\)/);
      await page.waitForFunction(shows("#queues tbody", "orders"));
      await page.waitForFunction(shows("#history tbody", "created"));

      // Follow the service's logs; a request made now shows up in them.
      await page.click("#services tbody button.link");
      await page.waitForSelector("#detail:not([hidden])");
      const marker = `marker-${crypto.randomUUID().slice(0, 8)}`;
      await new Promise((r) => setTimeout(r, 500));
      const res = await fetch(`${server.httpUrl}/js/${marker}`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      await page.waitForFunction(shows("#logs", `GET /js/${marker}`), { timeout: 15_000 });
      // The request shows in the rate (a refresh every 2 s compares the counters).
      await page.waitForFunction(shows("#rate", "req/s"));

      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

      // The token stays in the tab: a reload needs no sign-in.
      await page.reload({ waitUntil: "load" });
      await page.waitForSelector("#board:not([hidden])");

      assert.deepEqual(problems, []);
    } finally {
      await browser?.close();
      await server.stop();
    }
  },
});

Deno.test("dashboard: its page carries no data and a strict policy; other methods and paths are refused", async () => {
  const server = await startServer();
  try {
    const page = await fetch(`${server.apiUrl}/ui`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'; script-src 'self'/);
    assert.equal(page.headers.get("x-frame-options"), "DENY");
    const html = await page.text();
    assert.ok(!html.includes(server.token));
    const script = await fetch(`${server.apiUrl}/ui/app.js`);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    assert.ok(!(await script.text()).includes("innerHTML"), "the script builds text nodes only");
    const post = await fetch(`${server.apiUrl}/ui`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const missing = await fetch(`${server.apiUrl}/ui/../api/v1/services`);
    assert.equal(missing.status, 401, "a path that leaves /ui is the API's, with its token check");
    await missing.body?.cancel();
  } finally {
    await server.stop();
  }
});

/** A browser-side check that the element at `selector` shows `text` (written as a string: it runs in the page). */
function shows(selector: string, text: string): string {
  return `(document.querySelector(${JSON.stringify(selector)})?.textContent ?? "").includes(${JSON.stringify(text)})`;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.waitForSelector("#signin:not([hidden])");
  await page.evaluate('document.getElementById("token").value = ""');
  await page.type("#token", token);
  await page.click("#signin-form button");
}
