/**
 * The one error type Orca raises on purpose. Every layer throws `OrcaError`
 * with a stable `code`; the CLI and the API are the only places that turn it
 * into text, an exit code or an HTTP status. Nothing matches on message text.
 *
 * @module
 */

/** Stable error codes, grouped by where they come from. */
export type ErrorCode =
  | "usage" // the command line is wrong
  | "config" // a cluster.toml or service.toml is wrong
  | "invalid" // a request body or value is wrong
  | "unauthorized" // missing or wrong token
  | "not_found"
  | "conflict" // e.g. two services claim the same route
  | "wasm" // bytes that are not a usable Wasm module or component
  | "unsupported" // the operation does not apply to this workload
  | "unavailable" // the server cannot be reached or is not ready
  | "too_large" // a request body over its limit
  | "internal";

const httpStatus: Record<ErrorCode, number> = {
  usage: 400,
  config: 400,
  invalid: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  wasm: 422,
  unsupported: 400,
  unavailable: 503,
  too_large: 413,
  internal: 500,
};

/** Options that locate an error and tell the user what to do next. */
export interface OrcaErrorOptions {
  /** Where the problem is: a file with line, a service, an URL. */
  where?: string;
  /** One line that tells the user what to try. */
  hint?: string;
  /** For `unavailable` and `too_large`: seconds after which a retry may succeed (sent as `Retry-After`). */
  retryAfter?: number;
  cause?: unknown;
}

/** An error with a stable code, a location and a hint. */
export class OrcaError extends Error {
  readonly code: ErrorCode;
  readonly where?: string;
  readonly hint?: string;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, options: OrcaErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "OrcaError";
    this.code = code;
    this.where = options.where;
    this.hint = options.hint;
    this.retryAfter = options.retryAfter;
  }

  /** The HTTP status the API answers with for this error. */
  get status(): number {
    return httpStatus[this.code];
  }

  /** The response the API or the proxy answers with: the JSON body, the status, and `Retry-After` when known. */
  toResponse(): Response {
    const headers = this.retryAfter === undefined ? undefined : { "retry-after": String(Math.ceil(this.retryAfter)) };
    return Response.json(this.toJSON(), { status: this.status, headers });
  }

  /** The process exit code the CLI ends with: 2 for usage errors, else 1. */
  get exitCode(): number {
    return this.code === "usage" ? 2 : 1;
  }

  /** The JSON body the API sends; `fromJSON` reads it back on the client. */
  toJSON(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, where: this.where, hint: this.hint },
    };
  }

  /** Rebuilds an error sent by the API, or `undefined` if `body` is not one. */
  static fromJSON(body: unknown): OrcaError | undefined {
    if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
    const e = (body as ErrorBody).error;
    if (typeof e?.code !== "string" || !(e.code in httpStatus)) return undefined;
    return new OrcaError(e.code, String(e.message), { where: e.where, hint: e.hint });
  }
}

/** The wire shape of an error answered by the API. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; where?: string; hint?: string };
}

/** Formats any thrown value as one line: `<what> (<where>)`. */
export function describeError(err: unknown): string {
  if (err instanceof OrcaError) {
    return err.where ? `${err.message} (${err.where})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
