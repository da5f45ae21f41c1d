import assert from "node:assert/strict";
import {
  eventNameError,
  eventPatternError,
  isReservedEvent,
  MAX_TOPIC_LENGTH,
  parseRoute,
  parseTrigger,
  topicError,
} from "./triggers.ts";
import { parseServiceFile } from "./service.ts";
import { OrcaError } from "../errors.ts";

function triggerError(text: string): string {
  const parsed = parseTrigger(text);
  assert.ok("error" in parsed, `${text} should be refused`);
  return parsed.error;
}

Deno.test("topics, event names and patterns up to the limit pass; longer ones are refused with their length", () => {
  const long = "a".repeat(MAX_TOPIC_LENGTH);
  assert.equal(topicError(long), undefined);
  assert.equal(eventNameError(`${long.slice(2)}.b`), undefined);
  assert.equal(eventPatternError(`${long.slice(3)}.**`), undefined);
  assert.deepEqual(parseTrigger(`queue:${long}`), { type: "queue", topic: long });

  const huge = "a".repeat(5000);
  assert.match(topicError(huge)!, /topic name is 5000 characters long, more than 200/);
  assert.match(eventNameError(huge)!, /event name is 5000 characters long/);
  assert.match(eventPatternError(huge)!, /event pattern is 5000 characters long/);
  const big = "a".repeat(3000);
  assert.match(triggerError(`queue:${big}`), /^queue trigger: topic name is 3000 characters long/);
  assert.match(triggerError(`event:${big}`), /event pattern is 3000 characters long/);
  assert.match(triggerError(`http:/${big}`), /http route is 3001 characters long, more than 2048/);
  assert.match(triggerError(`cron:${" ".repeat(5000)}* * * * *`), /trigger is 5014 characters long/);
});

Deno.test("topic and event validators: syntax, quoted and cut short in the message", () => {
  assert.equal(topicError("orders.eu-1_x"), undefined);
  assert.match(topicError("-x")!, /invalid topic name "-x"/);
  assert.match(topicError("a b\u001b[31m")!, /"a b\\u001b\[31m"/);
  assert.match(topicError(`${"é".repeat(150)}`)!, /\.\.\. \(150 characters\)/);
  assert.equal(eventNameError("orders.created"), undefined);
  for (const bad of ["", "a..b", ".a", "a.", "a.*", "a b"]) assert.ok(eventNameError(bad), bad);
  assert.equal(eventPatternError("orca.**"), undefined);
  assert.ok(eventPatternError("a.**b"));
});

Deno.test("orca's own event names are reserved in any letter case", () => {
  for (const name of ["orca", "ORCA", "Orca.service.deployed", "orca.x"]) assert.ok(isReservedEvent(name), name);
  for (const name of ["orcas", "my.orca", "orca-x.y"]) assert.ok(!isReservedEvent(name), name);
});

Deno.test("routes that no request can reach are refused", () => {
  const cases: [string, RegExp][] = [
    ["/../../x", /a "\.\." segment never reaches a service/],
    ["/a/./b", /a "\." segment never reaches/],
    ["/a/%2e%2E/b", /a "%2e%2E" segment never reaches/],
    ["/a/.%2e", /never reaches/],
    ["/100%", /malformed percent-encoding in "100%"/],
    ["/a/%zz", /malformed percent-encoding/],
    ["/a/%ED%A0%80", /malformed percent-encoding/], // an encoded lone surrogate
    ["/a/\uD800", /not valid Unicode/],
    ["/search?q=1", /matches the path only/],
    ["/a#top", /matches the path only/],
    ["/a\n/b", /control characters/],
    ["/a/%2A", /"\*" inside a segment/],
    ["/:id/x/:id", /parameter ":id" appears twice/],
  ];
  for (const [route, expected] of cases) assert.match(parseRoute(route) as string, expected, route);
  assert.match(triggerError("http:/../../x"), /never reaches a service/);
});

Deno.test("route literals are kept decoded, as the router compares them with decoded request segments", () => {
  assert.deepEqual(parseRoute("/a%20b/caf%C3%A9/x%2Fy/:id/*"), [
    { kind: "literal", value: "a b" },
    { kind: "literal", value: "café" },
    { kind: "literal", value: "x/y" },
    { kind: "param", name: "id" },
    { kind: "wildcard" },
  ]);
  assert.deepEqual(parseRoute("/a b/"), [{ kind: "literal", value: "a b" }]);
  assert.deepEqual(parseRoute("/.well-known/x"), [{ kind: "literal", value: ".well-known" }, {
    kind: "literal",
    value: "x",
  }]);
});

Deno.test("a refused trigger in service.toml names file, line, service and the trigger's index", () => {
  const text = `[[service]]\nname = "api"\nmodule = "a.wasm"\ntriggers = [\n  "http:/ok",\n  "http:/../../x",\n]\n`;
  try {
    parseServiceFile(text, "s.toml", "p");
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof OrcaError);
    assert.match(err.message, /^service "api": `triggers\[1\]` http route "\/\.\.\/\.\.\/x": a "\.\." segment/);
    assert.equal(err.where, "s.toml:4");
  }
});
