/** `orca deploy [DIR]`: send services/*\/service.toml and their modules to the server. */

import { loadProject, type ModuleFile, type ProjectBundle, refsIn } from "../config/mod.ts";
import type { DeployResult } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";
import { whoAmI } from "./history.ts";
import { awaitCanaries } from "./rollout.ts";

export const deployCommand: Command = {
  name: "deploy",
  summary: "Deploy every services/<project>/service.toml under DIR (default: the current folder).",
  usage: "orca deploy [DIR] [--plan] [--no-wait] [--json]",
  flags: [
    "--plan           print where each replica would go and why (every node's verdict); change nothing",
    "--no-wait        do not wait for the outcome of the canaries it starts (exit 1 when one is rolled back)",
    "--json           print the result as JSON",
    ...clientFlags,
  ],
  options: { ...clientOptions, json: { type: "boolean" }, plan: { type: "boolean" }, "no-wait": { type: "boolean" } },
  maxArgs: 1,
  async run(values, args) {
    const dir = args[0] ?? ".";
    const bundle = await loadProject(dir);
    const client = await Client.fromFlags(values);
    if (values.plan) {
      await checkClusterSecrets(client, dir, bundle.cluster.cluster.network?.setup_key);
      const projects = Object.fromEntries([...bundle.projects].map(([name, services]) => [name, services]));
      const planned = await client.json<{ text: string; plan: unknown }>("/deploy?plan=1", {
        method: "POST",
        body: JSON.stringify({ projects }),
      });
      console.log(values.json ? JSON.stringify(planned.plan, null, 2) : planned.text);
      return 0;
    }
    const result = await deployFolder(client, dir, bundle);
    const uploaded = result.uploaded;
    const canaries = result.summary.canary ?? [];
    const wait = canaries.length > 0 && !values["no-wait"];
    if (values.json) {
      console.log(JSON.stringify({ ...result, uploaded }, null, 2));
      return wait && !(await awaitCanaries(client, canaries, true)) ? 1 : 0;
    }
    const rows: string[][] = [];
    for (const kind of ["created", "updated", "canary", "removed", "unchanged"] as const) {
      for (const service of result.summary[kind] ?? []) rows.push([service, kind]);
    }
    console.log(table(["SERVICE", "CHANGE"], rows));
    const { created, updated, removed, unchanged } = result.summary;
    console.log(
      result.id === null
        ? `\nnothing changed: ${unchanged.length} service(s) already up to date`
        : `\ndeploy ${result.id}: ${created.length} created, ${updated.length} updated, ${removed.length} removed, ${unchanged.length} unchanged` +
          (canaries.length ? `, ${canaries.length} canary` : "") +
          (uploaded ? ` (${uploaded} module(s) uploaded)` : ""),
    );
    if (!wait) return 0;
    if (await awaitCanaries(client, canaries)) return 0;
    console.error("orca: a canary was rolled back: its service runs the version it had before");
    return 1;
  },
};

/**
 * What `orca deploy DIR` does once the folder is read (`orca gitops` does the same with each commit): checks the
 * secrets cluster.toml names, uploads the modules and files the server lacks, pulls missing images, and sends the
 * deploy. The server answers once the new versions run (and are ready, where a readiness check is set).
 */
export async function deployFolder(
  client: Client,
  dir: string,
  bundle: ProjectBundle,
  opts: { quiet?: boolean; by?: string } = {},
): Promise<DeployResult & { uploaded: number }> {
  await checkClusterSecrets(client, dir, bundle.cluster.cluster.network?.setup_key);
  const say = opts.quiet ? silent : progress;
  const uploaded = await uploadMissing(client, "modules", bundle.modules.values(), say);
  await uploadMissing(client, "blobs", bundle.blobs.values(), say);
  const images = [...bundle.projects.values()].flat().map((s) => s.image).filter((i): i is string => !!i);
  await pullMissingImages(client, images, say);
  const projects = Object.fromEntries([...bundle.projects].map(([name, services]) => [name, services]));
  say("deploying: starting the new versions and waiting until they are ready");
  const result = await client.json<DeployResult>("/deploy", {
    method: "POST",
    body: JSON.stringify({ projects, by: opts.by ?? whoAmI() }),
  }).finally(() => say.done());
  return { ...result, uploaded };
}

/** cluster.toml's `setup_key` may name a secret: it must be set (the servers keep cluster.toml's values nowhere). */
async function checkClusterSecrets(client: Client, dir: string, setupKey: string | undefined): Promise<void> {
  const refs = setupKey === undefined ? undefined : refsIn(setupKey);
  if (!refs || !("names" in refs) || refs.names.length === 0) return;
  const { secrets } = await client.json<{ secrets: { name: string }[] }>("/secrets");
  const missing = refs.names.find((n) => !secrets.some((s) => s.name === n));
  if (missing === undefined) return;
  throw new OrcaError("config", `cluster.network.setup_key uses secret ${missing}, which is not set`, {
    where: `${dir}/cluster.toml`,
    hint: `orca secrets set ${missing}, then deploy again; nothing was deployed`,
  });
}

/**
 * A long step's progress on stderr: on a terminal, one line rewritten in place (the last state stays when it is
 * done); elsewhere (a log, CI), a plain line each.
 */
const progress = Object.assign((line: string) => {
  if (!Deno.stderr.isTerminal()) return console.error(line);
  const width = Deno.consoleSize().columns - 1;
  Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line.slice(0, Math.max(10, width))}`));
  progressShown = true;
}, {
  done() {
    if (progressShown) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    progressShown = false;
  },
  /** A line that stays (`pulling <image>`). */
  note(line: string) {
    console.error(line);
  },
});
let progressShown = false;
/** No progress at all: `orca gitops`' output is its structured log. */
const silent = Object.assign((_line: string) => {}, { done() {}, note(_line: string) {} });
type Progress = typeof silent;

/** Uploads the content-addressed files the server lacks; returns how many. Errors name the local file. */
async function uploadMissing(
  client: Client,
  route: "modules" | "blobs",
  files: Iterable<ModuleFile>,
  say: Progress,
): Promise<number> {
  let uploaded = 0;
  for (const file of files) {
    const head = await client.fetch(`/${route}/${file.hash}`, { method: "HEAD" }, [404]);
    if (head.status === 200) continue;
    say(`uploading ${file.path} (${(file.bytes.length / 1024).toFixed(0)} KiB)`);
    try {
      await client.fetch(`/${route}/${file.hash}`, { method: "PUT", body: file.bytes as Uint8Array<ArrayBuffer> });
    } catch (err) {
      if (err instanceof OrcaError && !err.where) {
        throw new OrcaError(err.code, err.message, { where: file.path, hint: err.hint, cause: err });
      }
      throw err;
    }
    uploaded++;
  }
  say.done();
  return uploaded;
}

/** Pulls the container images the server lacks, printing the engine's progress. */
async function pullMissingImages(client: Client, images: string[], say: Progress): Promise<void> {
  for (const image of new Set(images)) {
    const { present } = await client.json<{ present: boolean }>(`/images?name=${encodeURIComponent(image)}`);
    if (present) continue;
    say.note(`pulling ${image}`);
    const res = await client.fetch(`/images/pull?name=${encodeURIComponent(image)}`, { method: "POST" });
    let pending = "";
    let failure: string | undefined;
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        const p = JSON.parse(line) as { status?: string; progress?: string; id?: string; error?: string };
        if (p.error) failure = p.error;
        else say(`  ${[p.id, p.status, p.progress].filter(Boolean).join(" ")}`);
      }
    }
    say.done();
    if (failure) {
      throw new OrcaError("not_found", `image ${image} is not on the server, and pulling it failed: ${failure}`, {
        hint: `load it there with \`docker load -i image.tar\` or \`docker import rootfs.tar ${image}\``,
      });
    }
  }
}
