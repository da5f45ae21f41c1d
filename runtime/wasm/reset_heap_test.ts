/** An isolated service's heap over 100,000 requests (heap_probe.ts, in a child process, beside the reused one). */

import { heapStays } from "./heap_probe.ts";

Deno.test("an isolated service's heap stays bounded over 100,000 requests", () => heapStays("isolated"));
