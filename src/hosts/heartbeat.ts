// One heartbeat to a host, written into its observations: its facts on first contact and after
// a reconnect, otherwise a ping on the heartbeat connection. A call that does not answer within
// the deadline counts as a missed beat. When beats are due is the HostPool controller's
// (controllers/heartbeats.ts); what a missed beat means is its verdict.
import type { Hypervisor } from '../hypervisors/hypervisor.js';
import { errorText } from '../runtime/error-text.js';
import type { FleetHost } from './fleet-host.js';

export type BeatOutcome =
  /** The facts were read: first contact, or back after a loss (domains may have come or gone meanwhile). */
  { answered: true; factsRead: boolean } | { answered: false; error: unknown };

export async function heartbeat(
  host: FleetHost,
  hypervisors: { control: Hypervisor; heartbeat: Hypervisor },
  deadlineMs: number,
  now: () => number,
): Promise<BeatOutcome> {
  const observed = host.observed;
  observed.lastBeatAt = now();
  let factsRead = false;
  try {
    if (observed.factsStale || !observed.facts) {
      observed.facts = await withDeadline(hypervisors.control.facts(), deadlineMs, `read facts of ${host.uri}`);
      observed.factsStale = false;
      factsRead = true;
    } else {
      // A heartbeat costs one small round trip, however many domains the host runs.
      await withDeadline(hypervisors.heartbeat.ping(), deadlineMs, `heartbeat to ${host.uri}`);
    }
    observed.missedBeats = 0;
    observed.lastError = undefined;
    observed.lastAnswerAt = now();
    return { answered: true, factsRead };
  } catch (error) {
    observed.missedBeats++;
    // Without the connection pool's countdown ("; next attempt in 159 ms"): the message goes
    // into status, which must not change on every beat while the host stays down.
    observed.lastError = errorText(error).replace(/; next attempt in \d+ ms/g, '');
    return { answered: false, error };
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
