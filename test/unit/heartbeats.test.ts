// Heartbeat timing on an injected clock (src/controllers/heartbeats.ts): no waiting, no sleeps.
import { describe, expect, it } from '@jest/globals';
import { beatDue, nextBeatIn } from '../../src/controllers/heartbeats.js';

const PERIOD = 2_000;
const T = 1_800_000_000_000; // a fixed "now"

describe('heartbeats', () => {
  it('are due at first contact and after a reconnect (lastBeatAt 0), then once a period', () => {
    expect(beatDue({ lastBeatAt: 0, credentialsProblem: undefined }, PERIOD, T)).toBe(true);
    expect(beatDue({ lastBeatAt: T - PERIOD + 1, credentialsProblem: undefined }, PERIOD, T)).toBe(false);
    expect(beatDue({ lastBeatAt: T - PERIOD, credentialsProblem: undefined }, PERIOD, T)).toBe(true);
  });

  it('never go to a host whose credentials cannot be used', () => {
    expect(
      beatDue(
        { lastBeatAt: 0, credentialsProblem: { reason: 'CredentialsNotFound', message: 'no Secret' } },
        PERIOD,
        T,
      ),
    ).toBe(false);
  });

  it('bring the pool back when the earliest host is due, within [50 ms, one period]', () => {
    const hosts = [
      { lastBeatAt: T - 500, credentialsProblem: undefined },
      { lastBeatAt: T - 1_900, credentialsProblem: undefined },
    ];
    expect(nextBeatIn(hosts, PERIOD, T)).toBe(100);
    expect(nextBeatIn([{ lastBeatAt: T - 5_000, credentialsProblem: undefined }], PERIOD, T)).toBe(50); // overdue: soon, not at once
    expect(nextBeatIn([], PERIOD, T)).toBe(PERIOD);
    expect(nextBeatIn([{ lastBeatAt: 0, credentialsProblem: { reason: 'x', message: 'y' } }], PERIOD, T)).toBe(PERIOD);
  });

  it('follow the clock they are given: a period later the same host is due again', () => {
    const host = { lastBeatAt: T, credentialsProblem: undefined };
    expect(beatDue(host, PERIOD, T + PERIOD - 1)).toBe(false);
    expect(beatDue(host, PERIOD, T + PERIOD)).toBe(true);
    expect(nextBeatIn([host], PERIOD, T + 1_234)).toBe(PERIOD - 1_234);
  });
});
