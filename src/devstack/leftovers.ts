// Finds processes that belong to a local stack's state directory, so a new
// `make run` can clear what a killed one left behind, and tests can prove
// that a stopped stack left nothing running.
import { readdirSync, readFileSync } from 'node:fs';

export interface StackProcess {
  pid: number;
  command: string;
}

/** Processes (other than this one) whose command line mentions `stateDir`. */
export function processesUsing(stateDir: string): StackProcess[] {
  const found: StackProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
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
