/** A reused service's heap over 100,000 requests (heap_probe.ts, in a child process). */

import { heapStays } from "./heap_probe.ts";

Deno.test("a reused service's heap stays bounded over 100,000 requests", () => heapStays("reuse"));
