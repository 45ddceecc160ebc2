// Web console sessions (src/web/sessions.ts) on a clock the test moves: idle and absolute expiry,
// logout, and the CSRF comparison; and how a refusal of the API server is worded for the page.
import { describe, expect, it } from '@jest/globals';
import { kubeError } from '../../../src/web/kube.js';
import { csrfMatches, WebSessions } from '../../../src/web/sessions.js';
import { resumeVersion } from '../../../src/web/watch-relay.js';

const user = { name: 'alice', groups: ['people'] };

function store() {
  const clock = { now: 1_000_000 };
  const sessions = new WebSessions({ idleMs: 60_000, maxMs: 600_000 }, () => clock.now);
  return { clock, sessions };
}

describe('web sessions', () => {
  it('hands out unguessable ids and CSRF tokens that differ from each other and from the token', () => {
    const { sessions } = store();
    const one = sessions.create('token-1', user);
    const two = sessions.create('token-1', user);
    expect(one.id).not.toBe(two.id);
    expect(one.csrf).not.toBe(one.id);
    expect(one.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessions.get(one.id)?.token).toBe('token-1');
  });

  it('ends a session after the idle time without requests, and a request restarts that time', () => {
    const { clock, sessions } = store();
    const session = sessions.create('t', user);
    clock.now += 50_000;
    expect(sessions.get(session.id)).toBeDefined();
    clock.now += 50_000; // 100 s since login, 50 s since the last request
    expect(sessions.get(session.id)).toBeDefined();
    clock.now += 60_001;
    expect(sessions.get(session.id)).toBeUndefined();
    expect(sessions.size).toBe(0);
  });

  it('does not keep an idle session alive when only peeked at (the watches of an open page)', () => {
    const { clock, sessions } = store();
    const session = sessions.create('t', user);
    clock.now += 50_000;
    expect(sessions.peek(session.id)).toBeDefined();
    clock.now += 10_001;
    expect(sessions.peek(session.id)).toBeUndefined();
    expect(sessions.get(session.id)).toBeUndefined();
  });

  it('ends a session at its absolute end however busy it is, and the cookie lives as long', () => {
    const { clock, sessions } = store();
    const session = sessions.create('t', user);
    expect(sessions.cookieSeconds(session)).toBe(600);
    for (let i = 0; i < 12; i++) {
      clock.now += 50_000;
      expect(sessions.get(session.id)).toBeDefined();
    }
    clock.now += 1;
    expect(sessions.get(session.id)).toBeUndefined();
  });

  it('forgets a session at logout and never knows an unknown or missing id', () => {
    const { sessions } = store();
    const session = sessions.create('t', user);
    sessions.end(session.id);
    expect(sessions.get(session.id)).toBeUndefined();
    expect(sessions.get(undefined)).toBeUndefined();
    expect(sessions.get('made-up')).toBeUndefined();
  });

  it('accepts only the exact CSRF token of the session, once as one header', () => {
    const { sessions } = store();
    const session = sessions.create('t', user);
    const other = sessions.create('t', user);
    expect(csrfMatches(session, session.csrf)).toBe(true);
    expect(csrfMatches(session, other.csrf)).toBe(false);
    expect(csrfMatches(session, undefined)).toBe(false);
    expect(csrfMatches(session, '')).toBe(false);
    expect(csrfMatches(session, session.csrf.slice(1))).toBe(false);
    expect(csrfMatches(session, [session.csrf, session.csrf])).toBe(false);
  });
});

describe('refusals as the page shows them', () => {
  const forbidden = { status: 403, body: { message: 'virtualmachines "a" is forbidden: User "bob" cannot patch' } };

  it('names the verb, resource and where, with the API server message beside it', () => {
    const error = kubeError(forbidden, { verb: 'patch', resource: 'virtualmachines', namespace: 'web', name: 'a' });
    expect(error.code).toBe(403);
    expect(error.message).toBe('you may not patch virtualmachines "a" in namespace web');
    expect(error.details?.apiMessage).toBe(forbidden.body.message);
    expect(kubeError(forbidden, { verb: 'list', resource: 'virtualmachines' }).message).toBe(
      'you may not list virtualmachines in all namespaces',
    );
    expect(kubeError(forbidden, { verb: 'list', resource: 'hostpools', namespace: '' }).message).toBe(
      'you may not list hostpools',
    );
  });

  it('asks for a new login when the token is no longer accepted, and passes other errors on', () => {
    expect(kubeError({ status: 401, body: {} }, { verb: 'list', resource: 'events' }).message).toMatch(/log in again/);
    const missing = kubeError({ status: 404, body: { message: 'not found' } }, { verb: 'get', resource: 'x' });
    expect([missing.code, missing.message]).toEqual([404, 'not found']);
  });

  it('resumes a watch only from a resourceVersion-shaped Last-Event-ID', () => {
    expect(resumeVersion('12345')).toBe('12345');
    expect(resumeVersion(undefined)).toBeUndefined();
    expect(resumeVersion('12\n\nevent: x')).toBeUndefined();
    expect(resumeVersion(['1', '2'])).toBeUndefined();
  });
});
