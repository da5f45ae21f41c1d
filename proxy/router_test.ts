import assert from "node:assert/strict";
import { readService } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { routesOf, RouteTable } from "./router.ts";

const svc = (name: string, extra: Record<string, unknown>) =>
  readService({ name, image: "x", ...extra }, { file: "test" }, "p");

const table = new RouteTable([
  ...routesOf(svc("edge", { triggers: ["http:/api/edge/*"] })),
  ...routesOf(svc("user", { triggers: ["http:/api/users/:id", "http:/api/users/me"] })),
  ...routesOf(svc("root", { triggers: ["http:/*"] })),
  ...routesOf(svc("exact", { triggers: ["http:/api"] })),
  ...routesOf(svc("site", { domain: "app.example.com" })),
]);

const serviceFor = (host: string, path: string) => {
  const m = table.match(host, path);
  return m ? m.route.service : m;
};

Deno.test("exact, param and prefix routes; most specific wins", () => {
  assert.equal(serviceFor("x", "/api/edge/a/b"), "p/edge");
  assert.equal(serviceFor("x", "/api/edge"), "p/edge");
  assert.equal(serviceFor("x", "/api/users/me"), "p/user");
  assert.deepEqual(table.match("x", "/api/users/42")?.params, { id: "42" });
  assert.equal(serviceFor("x", "/api"), "p/exact");
  assert.equal(serviceFor("x", "/api/"), "p/exact");
  assert.equal(serviceFor("x", "/other"), "p/root");
  assert.equal(table.match("x", "/api/edge/a/b")?.rest, "/a/b");
  assert.deepEqual(table.match("x", "/api/users/J%C3%BCrgen")?.params, { id: "Jürgen" });
  assert.equal(table.match("x", "/api/users/%E0%A4%A"), null);
});

Deno.test("a domain route wins for its host, port ignored", () => {
  assert.equal(serviceFor("app.example.com:8080", "/api/edge/x"), "p/site");
  assert.equal(serviceFor("APP.example.com", "/"), "p/site");
  assert.equal(serviceFor("other.example.com", "/"), "p/root");
});

Deno.test("no match without a catch-all", () => {
  const t = new RouteTable(routesOf(svc("a", { triggers: ["http:/a/:x"] })));
  assert.equal(t.match("h", "/a"), undefined);
  assert.equal(t.match("h", "/a/b/c"), undefined);
  assert.equal(t.match("h", "/a/b")?.route.service, "p/a");
});

Deno.test("two services claiming the same route conflict, naming both", () => {
  assert.throws(
    () =>
      new RouteTable([
        ...routesOf(svc("a", { triggers: ["http:/x/:id"] })),
        ...routesOf(svc("b", { triggers: ["http:/x/:key"] })),
      ]),
    (err) =>
      err instanceof OrcaError && err.code === "conflict" &&
      /p\/a and p\/b both claim path \/x\/:key/.test(err.message),
  );
  assert.throws(
    () => new RouteTable([...routesOf(svc("a", { domain: "a.com" })), ...routesOf(svc("b", { domain: "a.com" }))]),
    /p\/a and p\/b both claim host a\.com/,
  );
});
