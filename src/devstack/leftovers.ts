// Finds processes that belong to a local stack's state directory, so a new
// `make run` can clear what a killed one left behind, and tests can prove
// that a stopped stack left nothing running.
import { readdirSync, readFileSync } from 'node:fs';

export interface StackProcess {
  pid: number;
  command: string;
}

/** This process and its ancestors: the shell or make that started us mention the directory too. */
export function selfAndAncestors(): Set<number> {
  const chain = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !chain.has(pid)) {
    chain.add(pid);
    try {
      // Field 4 of /proc/PID/stat is the parent; the name in field 2 may hold spaces.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return chain;
}

/** Processes, other than this one and its ancestors, whose command line mentions `stateDir`. */
export function processesUsing(stateDir: string): StackProcess[] {
  const found: StackProcess[] = [];
  const excluded = selfAndAncestors();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || excluded.has(pid)) continue;
    let command: string;
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    if (command.includes(stateDir)) found.push({ pid, command });
  }
  return found;
}
