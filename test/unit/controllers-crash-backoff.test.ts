// The restart delays after crashes (src/controllers/crash-backoff.ts).
import { describe, expect, it } from '@jest/globals';
import { backoffDelayMs, CrashBackoff, stableAfterMs } from '../../src/controllers/crash-backoff.js';

const spec = { initialSeconds: 1, maxSeconds: 8 };
const noJitter = () => 0;

describe('backoffDelayMs', () => {
  it('restarts the first failure at once, then doubles from initialSeconds up to maxSeconds', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelayMs(n, spec, noJitter))).toEqual([
      0, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
  });
  it('takes up to 10 % off at random, never adds', () => {
    expect(backoffDelayMs(3, spec, () => 1)).toBe(1800);
    expect(backoffDelayMs(3, spec, () => 0.5)).toBe(1900);
  });
  it('does not overflow on long loops', () => {
    expect(backoffDelayMs(10_000, spec, noJitter)).toBe(8000);
  });
});

describe('CrashBackoff', () => {
  it('grows the delay while failures follow each other, and says when the start is due', () => {
    const crashes = new CrashBackoff(noJitter);
    expect(crashes.failure('a', spec, 0)).toEqual({ failures: 1, delayMs: 0, startAt: 0 });
    expect(crashes.started('a', 10)).toBe(0);
    expect(crashes.failure('a', spec, 1_000)).toEqual({ failures: 2, delayMs: 1000, startAt: 2000 });
    expect(crashes.pending('a', 1_500)).toEqual({ leftMs: 500, startAt: 2000, failures: 2, delayMs: 1000 });
    expect(crashes.started('a', 2_000)).toBe(1_000);
    expect(crashes.pending('a', 2_000)).toBeUndefined();
    expect(crashes.failure('a', spec, 3_000)).toMatchObject({ failures: 3, delayMs: 2000 });
  });
  it('starts afresh after a stable run', () => {
    const crashes = new CrashBackoff(noJitter);
    crashes.failure('a', spec, 0);
    crashes.started('a', 0);
    crashes.failure('a', spec, 100);
    crashes.started('a', 1_100);
    expect(crashes.failure('a', spec, 1_100 + stableAfterMs(spec))).toMatchObject({ failures: 1, delayMs: 0 });
  });
  it('keeps VMs apart and forgets one', () => {
    const crashes = new CrashBackoff(noJitter);
    crashes.failure('a', spec, 0);
    crashes.failure('a', spec, 0);
    expect(crashes.failures('a')).toBe(2);
    expect(crashes.failures('b')).toBe(0);
    crashes.forget('a');
    expect(crashes.failures('a')).toBe(0);
  });
  it('waits at most 10 minutes before calling a run stable', () => {
    expect(stableAfterMs({ initialSeconds: 1, maxSeconds: 86_400 })).toBe(600_000);
    expect(stableAfterMs(spec)).toBe(16_000);
  });
});
