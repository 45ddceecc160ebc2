// One rule for where a VM runs, used before every define, start, destroy and evacuation, and
// whenever a migration ends or is found interrupted. Pure: what status records (the VM's host,
// its migration record) and what each host of its pool reports for the VM's UUID in, a verdict
// out. The promise it keeps: never two running copies started by us, and never a running copy
// destroyed on a guess.
//
// - A copy *runs* when its guest executes (running, blocked, shutting down). A paused copy does
//   not run, but may resume: a migration's source resumes by itself when libvirt cancels the
//   migration (`running/migration_canceled`), so a paused copy counts as "may run" for starting.
// - A host that may hold a copy (status.host, the migration's source and target, any host seen
//   with a copy) and does not answer is a blind spot: nothing is started anywhere while it may
//   hold a running copy, unless it is fenced (powered off by its fencing command) or leased (a
//   host of a pool with spec.leases whose copy, if it runs, holds the VM's lease: the lock
//   manager refuses a start elsewhere while it does, so a start may be tried; lease-recovery.ts).
// - Two running copies are split-brain: the copy to keep is the migration's target when it runs
//   (it completed the switchover, so it holds the newest state), else the one on status.host,
//   else the first by host name; the others are destroyed, with an Event and an alert.
// - A copy is removed only on evidence: the kept copy was seen running (or, for copies that do not
//   run, any copy was seen where the VM is).
import type { DomainState } from '../../hypervisors/hypervisor.js';

/** What one host says about the VM's UUID. */
export type Sighting =
  | { host: string; reach: 'reachable'; domain?: { state: DomainState; reason: string } }
  | { host: string; reach: 'unreachable' | 'fenced' | 'leased' };

export interface MigrationRecord {
  source: string;
  target: string;
}

export interface LocationInput {
  /** status.host. */
  host: string | undefined;
  /** status.migration. */
  migration: MigrationRecord | undefined;
  /** This process runs the migration now (libvirt has the domain on both hosts meanwhile). */
  migrating: boolean;
  /** What each looked-at host says; hosts not listed were not asked. */
  sightings: Sighting[];
}

export type Location =
  /** The VM lives on `host` (its copy runs there when `running`); `remove` are copies to take away. */
  | { kind: 'settled'; host: string; running: boolean; copy: boolean; remove: Removal[] }
  /** A live migration is under way: leave both copies alone. */
  | { kind: 'migrating'; source: string; target: string }
  /** A host that may hold a running copy does not answer: start nothing, destroy nothing. */
  | { kind: 'blind'; hosts: string[]; running: string | undefined; message: string }
  /** Two or more running copies: keep one, destroy the others. */
  | { kind: 'split-brain'; keep: string; remove: Removal[]; message: string };

export interface Removal {
  host: string;
  /** The copy's state when it was seen. */
  state: DomainState;
  why: string;
}

/** The guest executes. */
export function runs(state: DomainState): boolean {
  return state === 'running' || state === 'blocked' || state === 'shutdown';
}

/** The copy exists in memory: it runs, or is paused and may resume. */
export function live(state: DomainState): boolean {
  return runs(state) || state === 'paused' || state === 'pmsuspended';
}

/** "rig-0 does not answer", "rig-0 and rig-1 do not answer". */
function silent(hosts: string[]): string {
  return hosts.length > 1
    ? `${hosts.slice(0, -1).join(', ')} and ${hosts.at(-1)!} do not answer`
    : `${hosts[0]!} does not answer`;
}

/** The hosts that may hold a copy, from status alone. */
export function suspectHosts(host: string | undefined, migration: MigrationRecord | undefined): string[] {
  return [...new Set([host, migration?.source, migration?.target].filter((name): name is string => !!name))];
}

export function locate(input: LocationInput): Location {
  const { migration } = input;
  const seen = input.sightings.filter((s): s is Extract<Sighting, { reach: 'reachable' }> => s.reach === 'reachable');
  const running = seen.filter((s) => s.domain && runs(s.domain.state)).map((s) => s.host);
  const paused = seen.filter((s) => s.domain && live(s.domain.state) && !runs(s.domain.state)).map((s) => s.host);
  const stateOf = (host: string) => seen.find((s) => s.host === host)?.domain?.state ?? 'nostate';
  const suspects = suspectHosts(input.host, migration);
  const blind = input.sightings
    .filter((s) => s.reach === 'unreachable' && suspects.includes(s.host))
    .map((s) => s.host);

  if (running.length >= 2) {
    const keep =
      migration && running.includes(migration.target)
        ? migration.target
        : input.host && running.includes(input.host)
          ? input.host
          : [...running].sort()[0]!;
    const remove = running
      .filter((host) => host !== keep)
      .map((host) => ({
        host,
        state: stateOf(host),
        why: `split-brain: a second running copy beside the one on ${keep}`,
      }));
    // Paused copies beside a kept running one are stale too (a cancelled migration's source).
    for (const host of paused)
      remove.push({ host, state: stateOf(host), why: `a paused copy beside the running one on ${keep}` });
    const message = `the VM runs on ${running.sort().join(' and ')} at once; keeping the copy on ${keep} (${keep === migration?.target ? "the migration's target" : keep === input.host ? 'status.host' : 'first by name'}), destroying the others`;
    return { kind: 'split-brain', keep, remove, message };
  }

  if (input.migrating && migration) return { kind: 'migrating', source: migration.source, target: migration.target };

  if (running.length === 1) {
    const host = running[0]!;
    // Evidence in hand: the copy on `host` runs. Every other copy goes, paused ones included (a
    // paused source of a migration that completed could otherwise resume beside it).
    const remove: Removal[] = seen
      .filter((s) => s.host !== host && s.domain)
      .map((s) => ({ host: s.host, state: s.domain!.state, why: `the VM runs on ${host}` }));
    const unseen = blind.filter((name) => name !== host);
    if (unseen.length > 0) {
      return {
        kind: 'blind',
        hosts: unseen,
        running: host,
        message: `the VM runs on ${host}, and ${silent(unseen)} (may hold another copy); nothing is removed or started until ${unseen.length > 1 ? 'they answer or are' : 'it answers or is'} fenced`,
      };
    }
    return { kind: 'settled', host, running: true, copy: true, remove };
  }

  // Nothing runs where we can see.
  if (blind.length > 0) {
    return {
      kind: 'blind',
      hosts: blind,
      running: undefined,
      message: `no running copy is seen, and ${silent(blind)} (may hold one); the VM is not started anywhere until ${blind.length > 1 ? 'they answer or are' : 'it answers or is'} fenced`,
    };
  }
  if (paused.length > 0) {
    // One paused copy: the VM is where it is paused. Several: a migration stopped between its
    // steps; the source's copy holds the state the guest last ran with until a switchover ran.
    const keep =
      paused.length === 1
        ? paused[0]!
        : migration && paused.includes(migration.source)
          ? migration.source
          : input.host && paused.includes(input.host)
            ? input.host
            : [...paused].sort()[0]!;
    const remove = seen
      .filter((s) => s.host !== keep && s.domain)
      .map((s) => ({ host: s.host, state: s.domain!.state, why: `the VM is kept paused on ${keep}` }));
    return { kind: 'settled', host: keep, running: false, copy: true, remove };
  }
  // No live copy anywhere we can see, and every host that may hold one answered.
  const defined = seen.filter((s) => s.domain).map((s) => s.host);
  const home = input.host ?? defined[0];
  if (!home) return { kind: 'settled', host: '', running: false, copy: false, remove: [] };
  const remove = seen
    .filter((s) => s.host !== home && s.domain)
    .map((s) => ({ host: s.host, state: s.domain!.state, why: `a stopped copy; the VM lives on ${home}` }));
  return { kind: 'settled', host: home, running: false, copy: defined.includes(home), remove };
}
