// The session registry of `virtfleet api`: one writer per VM, take-over, limits, release.
import { describe, expect, it } from '@jest/globals';
import { requestHeaderConfig } from '../../src/apiserver/authentication.js';
import { StatusError } from '../../src/apiserver/responses.js';
import { CLOSE, SessionRegistry } from '../../src/apiserver/sessions.js';

function refusal(run: () => unknown): StatusError {
  try {
    run();
  } catch (error) {
    if (error instanceof StatusError) return error;
    throw error;
  }
  throw new Error('not refused');
}

describe('SessionRegistry', () => {
  it('refuses a second session on a VM with 409 naming who holds it, unless it takes over', () => {
    const registry = new SessionRegistry({ perUser: 4, total: 10 });
    const ended: Array<[number, string]> = [];
    registry.claim('alice', 'ns/vm', false, (code, reason) => ended.push([code, reason]));
    const refused = refusal(() => registry.claim('bob', 'ns/vm', false, () => undefined));
    expect(refused.code).toBe(409);
    expect(refused.message).toMatch(/in use by alice since .*--force/);
    expect(ended).toEqual([]);
    registry.claim('bob', 'ns/vm', true, () => undefined);
    expect(ended).toEqual([[CLOSE.takenOver, 'console taken over by bob']]);
    expect(registry.size).toBe(1);
  });

  it('counts sessions per user and in all, and frees them on release (twice is harmless)', () => {
    const registry = new SessionRegistry({ perUser: 2, total: 3 });
    const a = registry.claim('alice', 'ns/a', false, () => undefined);
    registry.claim('alice', 'ns/b', false, () => undefined);
    expect(refusal(() => registry.claim('alice', 'ns/c', false, () => undefined)).code).toBe(429);
    registry.claim('bob', 'ns/c', false, () => undefined);
    expect(refusal(() => registry.claim('carol', 'ns/d', false, () => undefined)).message).toMatch(
      /holds 3 console and VNC sessions/,
    );
    a.release();
    a.release();
    expect(registry.size).toBe(2);
    registry.claim('alice', 'ns/a', false, () => undefined);
    expect(registry.size).toBe(3);
  });

  it('does not let the release of a taken-over session free its successor', () => {
    const registry = new SessionRegistry({ perUser: 4, total: 10 });
    const first = registry.claim('alice', 'ns/vm', false, () => undefined);
    registry.claim('bob', 'ns/vm', true, () => undefined);
    first.release();
    expect(refusal(() => registry.claim('carol', 'ns/vm', false, () => undefined)).message).toMatch(/in use by bob/);
  });
});

describe('requestHeaderConfig', () => {
  it('says how to turn aggregation on when the ConfigMap has no requestheader CA', () => {
    expect(() => requestHeaderConfig({ 'client-ca-file': 'x' })).toThrow(/--requestheader-client-ca-file/);
  });

  it('reads the JSON lists kube-apiserver writes', () => {
    const config = requestHeaderConfig({
      'requestheader-client-ca-file': 'PEM',
      'requestheader-allowed-names': '["front-proxy-client"]',
      'requestheader-username-headers': '["X-Remote-User"]',
      'requestheader-group-headers': '["X-Remote-Group"]',
      'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
    });
    expect(config).toEqual({
      ca: 'PEM',
      allowedNames: ['front-proxy-client'],
      usernameHeaders: ['X-Remote-User'],
      groupHeaders: ['X-Remote-Group'],
      extraPrefixes: ['X-Remote-Extra-'],
      uidHeaders: [],
    });
  });
});
