// Open console sessions of this API server process: one writer per VM (a second session is
// refused unless it takes over, as `virsh console --force`), a per-user and an overall limit,
// so that a flood of sessions is refused instead of growing memory. Across replicas the one
// writer rule holds through libvirt itself: a domain's console has one stream at a time.
import { StatusError } from './responses.js';

export interface SessionLimits {
  /** Sessions one user may hold at once on this replica. */
  perUser: number;
  /** Sessions on this replica in all. */
  total: number;
}

/** WebSocket close codes of a session that the server ends. */
export const CLOSE = {
  /** The guest or the host ended the stream (domain stopped, migrated away, host dropped). */
  streamEnded: 4000,
  /** Another session took the console over (force). */
  takenOver: 4001,
  /** The client did not read its output: the bounded buffer was full. */
  slowClient: 4002,
  /** The server is shutting down. */
  shutdown: 1001,
} as const;

export interface Session {
  readonly id: number;
  readonly user: string;
  readonly vm: string;
  readonly since: Date;
  /** Ends the session from the server's side; the owner releases it once closed. */
  readonly end: (code: number, reason: string) => void;
}

export class SessionRegistry {
  private readonly byVm = new Map<string, Session>();
  private readonly byUser = new Map<string, number>();
  private count = 0;
  private nextId = 1;

  constructor(private readonly limits: SessionLimits) {}

  get size(): number {
    return this.count;
  }

  /**
   * Registers a session of `user` on `vm` (namespace/name), or throws: 429 past a limit, 409
   * when another session writes to the VM's console and `force` is not set. With `force` the
   * other session is ended first. Returns the release function (idempotent).
   */
  claim(user: string, vm: string, force: boolean, end: Session['end']): { session: Session; release: () => void } {
    const held = this.byUser.get(user) ?? 0;
    if (held >= this.limits.perUser)
      throw new StatusError(
        429,
        'TooManyRequests',
        `user ${user} already has ${held} console and VNC sessions open on this server (the limit is ${this.limits.perUser}); close one first`,
      );
    const current = this.byVm.get(vm);
    if (this.count - (force && current ? 1 : 0) >= this.limits.total)
      throw new StatusError(
        429,
        'TooManyRequests',
        `this server holds ${this.count} console and VNC sessions, its limit; try again later`,
      );
    if (current && !force)
      throw new StatusError(
        409,
        'Conflict',
        `the console of VM ${vm} is in use by ${current.user} since ${current.since.toISOString()}; ` +
          'one writer at a time: take it over with --force (?force=true), which disconnects the other session',
        { causes: [{ reason: 'ConsoleInUse', message: current.user }] },
      );
    if (current) {
      this.forget(current);
      current.end(CLOSE.takenOver, `console taken over by ${user}`);
    }
    const session: Session = { id: this.nextId++, user, vm, since: new Date(), end };
    this.byVm.set(vm, session);
    this.byUser.set(user, held + 1);
    this.count++;
    let released = false;
    return {
      session,
      release: () => {
        if (released) return;
        released = true;
        this.forget(session);
      },
    };
  }

  /** Ends every session (shutdown). */
  endAll(code: number, reason: string): void {
    for (const session of [...this.byVm.values()]) {
      this.forget(session);
      session.end(code, reason);
    }
  }

  private forget(session: Session): void {
    if (this.byVm.get(session.vm) !== session) return;
    this.byVm.delete(session.vm);
    const left = (this.byUser.get(session.user) ?? 1) - 1;
    if (left > 0) this.byUser.set(session.user, left);
    else this.byUser.delete(session.user);
    this.count--;
  }
}
