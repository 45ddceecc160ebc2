// Web console sessions: the user's bearer token stays here, in the server's memory, and the
// browser holds only a random session id in an HttpOnly cookie. A session ends at logout, after
// `idleMs` without a request, or `maxMs` after login, whichever comes first. One replica's
// memory: a restart logs everyone out (they log in again with their token).
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface WebUser {
  name: string;
  groups: string[];
}

export interface WebSession {
  id: string;
  token: string;
  user: WebUser;
  /** Sent by the page in the CSRF header with every write. */
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export interface SessionTimes {
  idleMs: number;
  maxMs: number;
}

export const DEFAULT_SESSION_TIMES: SessionTimes = { idleMs: 30 * 60_000, maxMs: 12 * 3600_000 };

export class WebSessions {
  private readonly sessions = new Map<string, WebSession>();

  constructor(
    readonly times: SessionTimes = DEFAULT_SESSION_TIMES,
    private readonly now: () => number = Date.now,
  ) {}

  create(token: string, user: WebUser): WebSession {
    this.sweep();
    const at = this.now();
    const session: WebSession = {
      id: randomBytes(32).toString('base64url'),
      token,
      user,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: at,
      lastSeen: at,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session of this id (its idle time restarts), or undefined when there is none or it expired. */
  get(id: string | undefined): WebSession | undefined {
    const session = this.peek(id);
    if (session) session.lastSeen = this.now();
    return session;
  }

  /**
   * The live session of this id without restarting its idle time: an open page's watches are
   * not the person at work, so they do not keep an idle session alive.
   */
  peek(id: string | undefined): WebSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const at = this.now();
    if (this.expired(session, at)) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Seconds the cookie should live: until the session's absolute end. */
  cookieSeconds(session: WebSession): number {
    return Math.max(0, Math.floor((session.createdAt + this.times.maxMs - this.now()) / 1000));
  }

  private expired(session: WebSession, at: number): boolean {
    return at - session.lastSeen > this.times.idleMs || at - session.createdAt > this.times.maxMs;
  }

  private sweep(): void {
    const at = this.now();
    for (const [id, session] of this.sessions) if (this.expired(session, at)) this.sessions.delete(id);
  }
}

/** Whether the CSRF header matches the session's token (compared in constant time). */
export function csrfMatches(session: WebSession, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const given = Buffer.from(header);
  const expected = Buffer.from(session.csrf);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
