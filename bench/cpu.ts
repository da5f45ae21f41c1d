/**
 * CPU time from /proc (Linux): of processes (all their threads) and of the whole machine, to tell what a request
 * costs each side of a benchmark, not only how many got through. Elsewhere (no /proc) every reading is NaN.
 */

/** Clock ticks per second of /proc's times (USER_HZ: 100 on Linux). */
const HZ = 100;

/** CPU seconds `pid` used so far (user + system, every thread), and that of its children with `children`. */
export function processCpu(pid: number, children = false): number {
  try {
    let total = statSeconds(Deno.readTextFileSync(`/proc/${pid}/stat`));
    if (children) {
      for (const entry of Deno.readDirSync("/proc")) {
        if (!/^\d+$/.test(entry.name)) continue;
        try {
          const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
          if (Number(fields(stat)[1]) === pid) total += statSeconds(stat);
        } catch {
          // gone meanwhile
        }
      }
    }
    return total;
  } catch {
    return NaN;
  }
}

/** CPU seconds the machine spent busy so far (user, nice, system, irq, softirq: every core). */
export function machineCpu(): number {
  try {
    const ticks = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / HZ;
  } catch {
    return NaN;
  }
}

/** The fields after the command name (which may hold spaces and parentheses): state is [0], ppid [1]. */
const fields = (stat: string) => stat.slice(stat.lastIndexOf(")") + 2).split(" ");

/** utime + stime of a /proc stat line, in seconds. */
const statSeconds = (stat: string) => {
  const f = fields(stat);
  return (Number(f[11]) + Number(f[12])) / HZ;
};

/** Runs `load` and returns its result with the CPU seconds `pids` (with `children`) and the machine used meanwhile. */
export async function measured<T>(
  pids: { pid: number; children?: boolean }[],
  load: () => Promise<T>,
): Promise<{ result: T; processSeconds: number; machineSeconds: number }> {
  const sum = () => pids.reduce((n, p) => n + processCpu(p.pid, p.children), 0);
  const [before, machineBefore] = [sum(), machineCpu()];
  const result = await load();
  return { result, processSeconds: sum() - before, machineSeconds: machineCpu() - machineBefore };
}
