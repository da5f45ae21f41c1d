/**
 * jco's own example components, built as their users build them (componentize-js on the example's source and WIT),
 * for the HTTP benchmark: examples/components/http-hello-world (an incomingHandler export) and
 * examples/components/http-server-fetch-handler (a FetchEvent listener). They are not part of this repository: the
 * benchmark builds them from a jco checkout named by BENCH_JCO (a folder holding examples/components), and leaves
 * them out when none is given.
 *
 * The fetch handler's WIT asks for wasi:http@0.2.3, while the componentize-js engine pinned here answers FetchEvents
 * on wasi:http@0.2.10: it is built with the same world at 0.2.10 (build_examples.ts's), its source unchanged.
 */

const root = new URL("..", import.meta.url).pathname;

export interface JcoExamples {
  helloWorld: string;
  fetchHandler: string;
}

/** Builds both examples into a temporary folder (once per checkout and source: cached under .cache/jco-examples). */
export async function buildJcoExamples(jco: string | undefined): Promise<JcoExamples | undefined> {
  if (!jco) return undefined;
  const examples = `${jco.replace(/\/$/, "")}/examples/components`;
  const out = `${root}.cache/jco-examples`;
  await Deno.mkdir(out, { recursive: true });
  const build = async (name: string, source: string, wit: string, world: string) => {
    const wasm = `${out}/${name}.wasm`;
    const stale = await Deno.stat(wasm).then((s) => s.mtime! < Deno.statSync(`${examples}/${name}/${source}`).mtime!)
      .catch(() => true);
    if (!stale) return wasm;
    console.error(`building jco's ${name} (componentize-js)`);
    const out_ = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}scripts/componentize.ts`, source, wit, wasm, world],
      cwd: `${examples}/${name}`,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out_.success) throw new Error(`componentize-js failed on jco's ${name}`);
    return wasm;
  };
  return {
    helloWorld: await build("http-hello-world", "http-hello-world.js", "wit", "component"),
    fetchHandler: await build("http-server-fetch-handler", "component.js", `${root}.cache/build/wit-0.2.10`, "edge"),
  };
}
