/**
 * A real ACME CA for tests: Debian's `pebble`, with `pebble-challtestsrv` as
 * its DNS (every name resolves to 127.0.0.1), on free loopback ports, in a
 * process group of its own that `stop` kills whole. Its HTTPS certificate is
 * made with openssl for the run; `caFile` trusts it, `rootFile` trusts what
 * it issues.
 */

export const pebbleInstalled = (() => {
  try {
    return Deno.statSync("/usr/bin/pebble").isFile && Deno.statSync("/usr/bin/pebble-challtestsrv").isFile;
  } catch {
    return false;
  }
})();

export interface Pebble {
  directory: string;
  /** The CA that signed pebble's own HTTPS certificate (for --acme-ca-cert). */
  caFile: string;
  /** The root of the certificates pebble issues (for curl --cacert). */
  rootFile: string;
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/**
 * Starts pebble: HTTP-01 challenges are checked on `ip:httpPort` (where an Orca proxy under test listens: every name
 * resolves to `ip`); certificates are valid `validitySecs`.
 */
export async function startPebble(httpPort: number, validitySecs = 3600, ip = "127.0.0.1"): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "orca-test-pebble-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await run(
    "openssl",
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ca"],
    dir,
  );
  await run("openssl", ["req", ...ec, "-keyout", "key.pem", "-out", "srv.csr", "-subj", "/CN=localhost"], dir);
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  const [acmePort, managementPort, dnsPort, challPort] = [freePort(), freePort(), freePort(), freePort()];
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: `${dir}/cert.pem`,
        privateKey: `${dir}/key.pem`,
        httpPort,
        tlsPort: freePort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        certificateValidityPeriod: validitySecs,
      },
    }),
  );
  // One process group for both (setsid via a shell): stop() kills the group.
  const script = `pebble-challtestsrv -dns01 127.0.0.1:${dnsPort} -http01 "" -https01 "" -tlsalpn01 "" ` +
    `-management 127.0.0.1:${challPort} -defaultIPv4 ${ip} -defaultIPv6 "" & ` +
    `PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 exec pebble -config ${dir}/config.json -dnsserver 127.0.0.1:${dnsPort}`;
  const child = new Deno.Command("setsid", {
    args: ["sh", "-c", script],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    const client = Deno.createHttpClient({ caCerts: [ca] });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const res = await fetch(`https://127.0.0.1:${managementPort}/roots/0`, { client });
        if (res.ok) {
          await Deno.writeTextFile(`${dir}/root.pem`, await res.text());
          break;
        }
        await res.body?.cancel();
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`pebble did not start: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    client.close();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    caFile: `${dir}/ca.pem`,
    rootFile: `${dir}/root.pem`,
    stop,
  };
}

/** `curl` over HTTPS to `name` (resolved to `ip`) on `port`, trusting `rootFile`: status, HTTP version, body. */
export async function curlHttps(
  name: string,
  port: number,
  path: string,
  rootFile: string,
  extra: string[] = [],
  ip = "127.0.0.1",
): Promise<{ status: number; version: string; body: string; error: string }> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "10",
      "--cacert",
      rootFile,
      "--resolve",
      `${name}:${port}:${ip}`,
      "-w",
      "\n%{http_code} %{http_version}",
      ...extra,
      `https://${name}:${port}${path}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const cut = text.lastIndexOf("\n");
  const [status, version] = text.slice(cut + 1).split(" ");
  return { status: Number(status), version, body: text.slice(0, cut), error: new TextDecoder().decode(out.stderr) };
}
