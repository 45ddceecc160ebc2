// How many QEMUs of each VM are alive: the QEMUs of every rig host are processes of this
// machine, their command line names the domain's UUID (`-uuid <UID>`, the VM's UID). A VM that
// runs twice at once (its old copy on a failed host not fenced) shows as two.
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat after the command name (the state first), or undefined once the process is gone. */
export function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Live QEMU processes of this machine by the UUID on their command line (`-uuid X`), zombies left out. */
export function qemuProcessesByUuid(): Map<string, number[]> {
  const found = new Map<string, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    const at = argv.indexOf('-uuid');
    if (at < 0 || !/qemu/.test(argv[0] ?? '')) continue;
    const state = procStat(Number(entry))?.[0];
    if (state === undefined || state === 'Z') continue; // gone meanwhile, or a zombie
    const uuid = argv[at + 1] ?? '';
    found.set(uuid, [...(found.get(uuid) ?? []), Number(entry)]);
  }
  return found;
}

/** Samples every ~100 ms: per VM (by name), the most live QEMUs seen at once, and when more than one. */
export class CopiesChecker {
  samples = 0;
  readonly max = new Map<string, number>();
  readonly violations: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;

  /** `uids`: the VMs to look for, UID → name (asked at every sample). */
  constructor(private readonly uids: () => Map<string, string>) {}

  start(): void {
    this.startedAt = Date.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), 100);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Live copies of each VM now (also a sample). */
  sample(): Map<string, number> {
    const byUuid = qemuProcessesByUuid();
    const now = new Map<string, number>();
    for (const [uid, name] of this.uids()) {
      const pids = byUuid.get(uid) ?? [];
      now.set(name, pids.length);
      this.max.set(name, Math.max(this.max.get(name) ?? 0, pids.length));
      if (pids.length > 1)
        this.violations.push(
          `${name}: ${pids.length} QEMUs (${pids.join(', ')}) at +${Date.now() - this.startedAt} ms`,
        );
    }
    this.samples++;
    return now;
  }

  /** The most live QEMUs of one VM seen at once. */
  worst(): number {
    return Math.max(0, ...this.max.values());
  }

  /** "N samples over S s (R/s)". */
  sampling(): string {
    const seconds = (Date.now() - this.startedAt) / 1000;
    return `${this.samples} samples over ${seconds.toFixed(1)} s (${(this.samples / seconds).toFixed(1)}/s)`;
  }
}
