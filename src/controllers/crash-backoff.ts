// When to start a VM again after it went down without being asked. The first failure after a
// stable run restarts it at once (recovery speed is the point); each further failure in a row
// waits longer: restartBackoff.initialSeconds, doubling up to maxSeconds, with up to 10 % jitter
// so that VMs that crashed together do not all come back in the same instant. A VM that stayed
// up for `stableMs` (twice maxSeconds, at most 10 min, as the kubelet does) starts afresh.
//
// Pure bookkeeping by VM UID, in memory: after a controller restart a crash loop starts over
// at "at once", which costs one fast retry, never a missed one.

export interface BackoffSpec {
  initialSeconds: number;
  maxSeconds: number;
}

interface Track {
  /** Failures in a row. */
  failures: number;
  /** When the VM was last started by us (epoch ms). */
  startedAt: number | undefined;
  /** When the pending restart is due (epoch ms); undefined when none is pending. */
  startAt: number | undefined;
  /** When the failure being recovered from was seen (epoch ms). */
  detectedAt: number | undefined;
  /** The delay chosen for the pending restart. */
  delayMs: number;
}

export interface FailureVerdict {
  failures: number;
  /** Delay before the restart; 0: at once. */
  delayMs: number;
  startAt: number;
}

export function stableAfterMs(spec: BackoffSpec): number {
  return Math.min(2 * spec.maxSeconds * 1000, 600_000);
}

/** The delay before restart number `failures` in a row (1-based): 0, initial, 2×initial … max, jittered down by up to 10 %. */
export function backoffDelayMs(failures: number, spec: BackoffSpec, random: () => number = Math.random): number {
  if (failures <= 1) return 0;
  const base = Math.min(spec.initialSeconds * 2 ** Math.min(failures - 2, 30), spec.maxSeconds) * 1000;
  return Math.round(base * (1 - 0.1 * random()));
}

export class CrashBackoff {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly random: () => number = Math.random) {}

  /** A failure seen now; returns when the VM may start again. */
  failure(uid: string, spec: BackoffSpec, now: number): FailureVerdict {
    const track = this.tracks.get(uid) ?? {
      failures: 0,
      startedAt: undefined,
      startAt: undefined,
      detectedAt: undefined,
      delayMs: 0,
    };
    const stable = track.startedAt !== undefined && now - track.startedAt >= stableAfterMs(spec);
    track.failures = stable ? 1 : track.failures + 1;
    const delayMs = backoffDelayMs(track.failures, spec, this.random);
    track.startAt = now + delayMs;
    track.detectedAt = now;
    track.delayMs = delayMs;
    this.tracks.set(uid, track);
    return { failures: track.failures, delayMs, startAt: track.startAt };
  }

  /** The restart that is due, if one is pending: undefined when none, else ms left (≤ 0: due). */
  pending(
    uid: string,
    now: number,
  ): { leftMs: number; startAt: number; failures: number; delayMs: number } | undefined {
    const track = this.tracks.get(uid);
    if (track?.startAt === undefined) return undefined;
    return { leftMs: track.startAt - now, startAt: track.startAt, failures: track.failures, delayMs: track.delayMs };
  }

  /** The VM was started now; returns when the failure it recovers from was seen, if any. */
  started(uid: string, now: number): number | undefined {
    const track = this.tracks.get(uid) ?? {
      failures: 0,
      startedAt: undefined,
      startAt: undefined,
      detectedAt: undefined,
      delayMs: 0,
    };
    const detectedAt = track.detectedAt;
    track.startedAt = now;
    track.startAt = undefined;
    track.detectedAt = undefined;
    this.tracks.set(uid, track);
    return detectedAt;
  }

  /** Failures in a row so far (0 when none or unknown). */
  failures(uid: string): number {
    return this.tracks.get(uid)?.failures ?? 0;
  }

  forget(uid: string): void {
    this.tracks.delete(uid);
  }
}
