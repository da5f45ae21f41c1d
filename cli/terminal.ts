/**
 * Text that comes from the server (what guests wrote, queue messages, error
 * text) can hold control characters: on a terminal an escape sequence could
 * move the cursor, rewrite earlier lines, retitle the window or hide what
 * follows. Shown to a person, such characters are written as escapes
 * (`\x1b`, `\r`); piped elsewhere, logs stay byte for byte what was written.
 */

// C0 controls but tab, DEL, C1 controls, and the bidirectional overrides that reorder what a reader sees.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\x1b": "\\x1b" };

/** `text` with every control character written as a visible escape. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

/** `text` escaped when `stream` is a terminal, as it is otherwise. */
export function forTerminal(text: string, stream: { isTerminal(): boolean } = Deno.stdout): string {
  return stream.isTerminal() ? escapeControls(text) : text;
}
