import assert from "node:assert/strict";
import { parseCron } from "./cron.ts";

function zoneOf(text: string): string {
  const s = parseCron(text);
  assert.ok(!("error" in s), `${text}: ${"error" in s ? s.error : ""}`);
  return s.timeZone;
}

function errorOf(text: string): string {
  const s = parseCron(text);
  assert.ok("error" in s, `${text} should be refused`);
  return s.error;
}

Deno.test("IANA zones are read after five fields, six fields or a macro, and made canonical", () => {
  assert.equal(zoneOf("0 9 * * * Europe/Berlin"), "Europe/Berlin");
  assert.equal(zoneOf("0 9 * * * america/new_york"), "America/New_York");
  assert.equal(zoneOf("0 9 * * * US/Eastern"), "America/New_York");
  assert.equal(zoneOf("30 0 9 * * * Asia/Tokyo"), "Asia/Tokyo");
  assert.equal(zoneOf("@daily Europe/Paris"), "Europe/Paris");
  assert.equal(zoneOf("0 9 * * * UTC"), "UTC");
  assert.equal(zoneOf("0 9 * * * gmt"), "UTC");
  assert.equal(zoneOf("0 9 * * * Etc/GMT+5"), "Etc/GMT+5");
  assert.equal(zoneOf("0 9 * * *"), "UTC");
});

Deno.test("a sixth word that is a day of the week is a field, not a zone", () => {
  const s = parseCron("0 0 9 * * MON-FRI");
  assert.ok(!("error" in s));
  assert.equal(s.timeZone, "UTC");
  assert.ok(s.hasSeconds);
  assert.deepEqual([...s.weekdays].sort(), [1, 2, 3, 4, 5]);
});

Deno.test("abbreviations are not IANA zones: EST is refused with the zone most likely meant", () => {
  // Intl would take "EST" as Panama's fixed UTC-5 and "BST" as Bangladesh: never what a cron line means.
  assert.match(
    errorOf("0 9 * * * EST"),
    /time zone "EST" is not an IANA zone name: write a Region\/City name, e.g\. America\/New_York/,
  );
  assert.match(errorOf("0 9 * * * pst"), /e\.g\. America\/Los_Angeles/);
  assert.match(errorOf("0 9 * * * BST"), /e\.g\. Europe\/London/);
  assert.match(errorOf("@hourly CEST"), /e\.g\. Europe\/Berlin/);
  assert.match(errorOf("0 9 * * * XYZ"), /time zone "XYZ" is not an IANA zone name: use one like Europe\/Berlin/);
  assert.match(errorOf("0 9 * * * Mars/Olympus"), /unknown time zone "Mars\/Olympus": not an IANA zone name/);
  assert.match(errorOf(`0 9 * * * ${"A".repeat(500)}/B`), /^unknown time zone "A{64}"/);
});
