/** Test helpers of config/: the error a config reader throws. */

import assert from "node:assert/strict";
import { OrcaError } from "../errors.ts";

/** Runs `fn`, which must throw a `config` OrcaError; returns it. */
export function configError(fn: () => unknown): OrcaError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof OrcaError, `expected OrcaError, got ${err}`);
    assert.equal(err.code, "config");
    return err;
  }
  assert.fail("expected a config error");
}
