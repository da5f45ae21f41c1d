/**
 * The data dir ($ORCA_HOME) holds the cluster token, env values, messages and
 * modules: only the user who runs Orca may read it. Everything the server
 * creates there is 0600 (folders 0700) whatever the umask it was started
 * with or the mode of a folder that already existed.
 */

/** Files of earlier versions that predate this rule, tightened at start. */
const KNOWN_FILES = ["cluster.token", "node.id", "orca.db", "orca.db-wal", "orca.db-shm"];

/**
 * Makes `home` (0700 when new), sets the process umask to 077 so every file
 * and folder made later is private (SQLite's WAL files, the compile cache,
 * guest hosts' files), and returns a warning when an existing `home` is open
 * to other users.
 */
export async function secureHome(home: string): Promise<string | undefined> {
  // Process-wide on purpose: SQLite and the guest hosts create files we never get to pass a mode to.
  Deno.umask(0o077);
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  for (const name of KNOWN_FILES) {
    try {
      await Deno.chmod(`${home}/${name}`, 0o600);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  const mode = (await Deno.stat(home)).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(3, "0");
    return `warning: the data dir ${home} is open to other users (mode ${octal}); Orca's files in it are private, ` +
      `but run \`chmod 700 ${home}\` so nobody can list them`;
  }
  return undefined;
}
