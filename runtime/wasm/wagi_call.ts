/**
 * One call of a WAGI guest (a WASI command speaking CGI, wagi.ts): the
 * request in CGI variables and on stdin, the response out of stdout. A large
 * response streams out while the guest writes, a large request body streams
 * in while it reads: JSPI suspends the guest on its blocking reads and writes.
 */

import { OrcaError } from "../../errors.ts";
import {
  BodyReader,
  type HttpGuestCall,
  ResponseBody,
  STREAM_AFTER_BYTES,
  type StreamingCall,
  streamingCall,
} from "./body.ts";
import { type Guest, runCommand } from "./guest.ts";
import { cgiEnv, parseCgiOutput } from "./wagi.ts";

export interface WagiCall extends HttpGuestCall {
  /** The service's declared env (the CGI variables are added to it). */
  env: Record<string, string>;
}

/**
 * Runs a WAGI guest. `response` settles when the guest is done, or (a large
 * response) once it has written STREAM_AFTER_BYTES: then the body streams
 * and `done` settles when the guest is. A failure after streaming began
 * errors the stream; `failed` logs it and names it.
 */
export function serveWagi(
  guest: Guest,
  { env, req, log, failed, deadline }: WagiCall,
): StreamingCall {
  const stdin = new BodyReader(req.body);
  return streamingCall(
    async (begin) => {
      const body = req.body ?? new Uint8Array();
      const declared = req.headers.find(([name]) => name === "content-length")?.[1];
      const bodyLength = body instanceof ReadableStream ? Number(declared) : body.length;
      const out = new ResponseBody();
      out.onWrite = () => {
        if (out.streaming || out.size <= STREAM_AFTER_BYTES) return;
        const size = out.size;
        const head = parseCgiOutput(out.take());
        if (!head) throw new OrcaError("wasm", `the handler wrote no CGI header block in its first ${size} bytes`);
        begin(head.status, head.headers, out, head.body);
      };
      guest.io = {
        env: { ...env, ...cgiEnv(req.method, new URL(req.url), req.headers, req.ctx, bodyLength) },
        stdin: (max) => {
          const chunk = stdin.blockingRead(max);
          return chunk instanceof Promise ? chunk.then((c) => c ?? new Uint8Array()) : chunk ?? new Uint8Array();
        },
        stdout: (bytes) => out.write(bytes),
        stderr: log.stderr,
        drain: () => out.drain(),
        deadline,
      };
      const code = await runCommand(guest);
      log.flush();
      if (code !== 0) throw new OrcaError("wasm", `the handler exited with code ${code}`);
      if (out.streaming) return undefined;
      const response = parseCgiOutput(out.take());
      if (!response) {
        throw new OrcaError(
          "wasm",
          "the handler wrote no CGI header block (e.g. `Content-Type: text/plain` and a blank line)",
        );
      }
      return response;
    },
    failed,
    stdin,
  );
}
