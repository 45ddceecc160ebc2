// The decisions behind `virtfleet vm …` operations (src/controllers/vm-actions.ts): which power
// step each action asks for in each domain state and runStrategy, and what status.lastAction says.
import { describe, expect, it } from '@jest/globals';
import {
  actionRequest,
  decideAction,
  heldBy,
  type ActionInput,
  type LastAction,
} from '../../src/controllers/vm-actions.js';

const running = { state: 'running', reason: 'booted' } as const;
const shutoff = { state: 'shutoff', reason: 'shutdown' } as const;
const paused = { state: 'paused', reason: 'user' } as const;

function input(extra: Partial<ActionInput>): ActionInput {
  return {
    request: undefined,
    last: undefined,
    strategy: 'Always',
    domain: running,
    shutdownSince: undefined,
    now: 1_000_000,
    graceMs: 60_000,
    ...extra,
  };
}

const last = (action: string, state: LastAction['state'], id = 'id-1'): LastAction => ({
  id,
  action,
  state,
  time: '2026-11-22T00:00:00Z',
});

describe('actionRequest', () => {
  it('reads the action and its id', () => {
    expect(actionRequest({ 'virtfleet.io/action': 'stop', 'virtfleet.io/action-id': 'a' })).toEqual({
      action: 'stop',
      id: 'a',
    });
  });
  it('uses the action as the id when none is given', () => {
    expect(actionRequest({ 'virtfleet.io/action': 'restart' })).toEqual({ action: 'restart', id: 'restart' });
  });
  it('is undefined without the annotation', () => {
    expect(actionRequest({ other: 'x' })).toBeUndefined();
    expect(actionRequest(undefined)).toBeUndefined();
  });
  it('refuses an unknown action and an overlong id, naming the annotation', () => {
    expect(actionRequest({ 'virtfleet.io/action': 'reboot' })).toEqual({
      error:
        'annotation virtfleet.io/action="reboot" is not one of start, stop, restart, pause, unpause, migrate, suspend, resume; fix or remove it',
    });
    expect(actionRequest({ 'virtfleet.io/action': 'stop', 'virtfleet.io/action-id': 'x'.repeat(129) })).toEqual({
      error: 'annotation virtfleet.io/action-id is longer than 128 characters; use a shorter id',
    });
  });
});

describe('decideAction', () => {
  it('follows runStrategy without a request', () => {
    expect(decideAction(input({ domain: shutoff }))).toEqual({ power: { action: 'start' } });
    expect(decideAction(input({ strategy: 'Manual', domain: shutoff }))).toEqual({ power: { action: 'none' } });
  });

  describe('stop (a hold)', () => {
    const request = { action: 'stop' as const, id: 'id-1' };
    it('asks for a shutdown and records InProgress when new', () => {
      expect(decideAction(input({ request }))).toEqual({
        power: { action: 'shutdown', recheckMs: 60_000 },
        hold: 'stop',
        record: { id: 'id-1', action: 'stop', state: 'InProgress', message: 'shutting down' },
      });
    });
    it('destroys after the grace period', () => {
      expect(
        decideAction(input({ request, last: last('stop', 'InProgress'), shutdownSince: 1_000_000 - 60_000 })).power,
      ).toEqual({ action: 'destroy' });
    });
    it('records Succeeded once stopped, then keeps it stopped under Always without a new record', () => {
      const done = decideAction(input({ request, last: last('stop', 'InProgress'), domain: shutoff }));
      expect(done).toEqual({
        power: { action: 'none' },
        hold: 'stop',
        record: {
          id: 'id-1',
          action: 'stop',
          state: 'Succeeded',
          message: 'stopped; it stays stopped until `virtfleet vm start`',
        },
      });
      expect(decideAction(input({ request, last: last('stop', 'Succeeded'), domain: shutoff }))).toEqual({
        power: { action: 'none' },
        hold: 'stop',
      });
    });
  });

  describe('pause (a hold)', () => {
    const request = { action: 'pause' as const, id: 'p' };
    it('suspends a running domain and keeps it paused', () => {
      expect(decideAction(input({ request }))).toMatchObject({
        power: { action: 'suspend' },
        hold: 'pause',
        record: { state: 'InProgress' },
      });
      expect(decideAction(input({ request, last: last('pause', 'InProgress', 'p'), domain: paused }))).toMatchObject({
        power: { action: 'none' },
        record: { state: 'Succeeded' },
      });
      expect(decideAction(input({ request, last: last('pause', 'Succeeded', 'p'), domain: paused }))).toEqual({
        power: { action: 'none' },
        hold: 'pause',
      });
    });
    it('refuses a stopped domain once, then follows runStrategy', () => {
      expect(decideAction(input({ request, strategy: 'Manual', domain: shutoff }))).toEqual({
        power: { action: 'none' },
        record: {
          id: 'p',
          action: 'pause',
          state: 'Refused',
          message: 'the VM is not running (domain shutoff); pause applies to a running VM',
        },
      });
      expect(decideAction(input({ request, last: last('pause', 'Refused', 'p'), domain: shutoff }))).toEqual({
        power: { action: 'start' },
      });
    });
  });

  describe('one-shot actions', () => {
    it('start: starts a stopped domain, resumes a paused one, is done for a running one', () => {
      const request = { action: 'start' as const, id: 's' };
      expect(decideAction(input({ request, strategy: 'Manual', domain: shutoff }))).toMatchObject({
        power: { action: 'start' },
        record: { state: 'Succeeded', message: 'started' },
      });
      expect(decideAction(input({ request, domain: paused }))).toMatchObject({
        power: { action: 'resume' },
        record: { state: 'Succeeded' },
      });
      expect(decideAction(input({ request }))).toMatchObject({
        power: { action: 'none' },
        record: { message: 'already running' },
      });
    });
    it('once done, runStrategy governs: Manual leaves a domain the guest stopped alone', () => {
      const request = { action: 'start' as const, id: 's' };
      expect(
        decideAction(input({ request, last: last('start', 'Succeeded', 's'), strategy: 'Manual', domain: shutoff })),
      ).toEqual({ power: { action: 'none' } });
    });
    it('restart: shuts down, then starts and records Succeeded', () => {
      const request = { action: 'restart' as const, id: 'r' };
      expect(decideAction(input({ request }))).toMatchObject({
        power: { action: 'shutdown' },
        record: { state: 'InProgress' },
      });
      expect(
        decideAction(input({ request, last: last('restart', 'InProgress', 'r'), shutdownSince: 999_000 })),
      ).toEqual({ power: { action: 'wait', recheckMs: 59_000 } });
      expect(decideAction(input({ request, last: last('restart', 'InProgress', 'r'), domain: shutoff }))).toEqual({
        power: { action: 'start' },
        record: { id: 'r', action: 'restart', state: 'Succeeded', message: 'restarted' },
      });
    });
    it('a new id is a new request, the same action or not', () => {
      const request = { action: 'restart' as const, id: 'r2' };
      expect(decideAction(input({ request, last: last('restart', 'Succeeded', 'r') }))).toMatchObject({
        record: { id: 'r2', state: 'InProgress' },
      });
    });
    it('Halted refuses start and restart with the fix, and keeps the domain stopped', () => {
      for (const action of ['start', 'restart'] as const) {
        const decision = decideAction(input({ request: { action, id: 'h' }, strategy: 'Halted', domain: shutoff }));
        expect(decision.power).toEqual({ action: 'none' });
        expect(decision.record).toEqual({
          id: 'h',
          action,
          state: 'Refused',
          message: `runStrategy Halted keeps the VM stopped: set spec.runStrategy to Always or Manual in its manifest to ${action} it`,
        });
      }
    });
    it('unpause of a running domain is done at once', () => {
      expect(decideAction(input({ request: { action: 'unpause', id: 'u' } }))).toMatchObject({
        power: { action: 'none' },
        record: { state: 'Succeeded', message: 'was not paused' },
      });
    });
  });
});

describe('suspend and resume', () => {
  it('suspend is a hold the suspend step acts on: the power step stands aside in every state', () => {
    for (const domain of [running, paused, shutoff])
      expect(decideAction(input({ request: { action: 'suspend', id: 's' }, domain }))).toEqual({
        power: { action: 'none' },
      });
    expect(heldBy({ 'virtfleet.io/action': 'suspend' })).toBe('suspend');
    expect(heldBy({ 'virtfleet.io/action': 'resume' })).toBeUndefined();
  });
  it('resume starts a saved (shut off) domain once per id, like start', () => {
    expect(decideAction(input({ request: { action: 'resume', id: 'r' }, domain: shutoff }))).toEqual({
      power: { action: 'start' },
      record: { id: 'r', action: 'resume', state: 'Succeeded', message: 'started' },
    });
    // Done: runStrategy governs again (Manual leaves a later stop alone).
    expect(
      decideAction(
        input({
          request: { action: 'resume', id: 'r' },
          last: last('resume', 'Succeeded', 'r'),
          strategy: 'Manual',
          domain: shutoff,
        }),
      ),
    ).toEqual({ power: { action: 'none' } });
  });
  it('resume under runStrategy Halted is refused with the fix', () => {
    expect(
      decideAction(input({ request: { action: 'resume', id: 'h' }, strategy: 'Halted', domain: shutoff })).record,
    ).toMatchObject({ state: 'Refused', message: expect.stringContaining('to resume it') });
  });
});
