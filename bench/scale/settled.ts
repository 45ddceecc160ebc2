// bench/scale, once converged: wait until the controller has written the burst's Events (they
// trail the status they describe), then a quiet window of a fleet with nothing to do: what it
// still costs (heartbeats, orphan scans, the HostPool's reconciles), per host.

/** Sums of the controller's `/metrics` series whose name starts with `prefix`, by full series. */
async function metric(url: string, prefix: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/**
 * Resolves once the controller's virtfleet_events_unsent is 0 and its work queues are empty (the
 * reconciles its own last status writes asked for), or after `deadlineMs`; ms waited.
 */
export async function eventsWritten(metricsUrl: string, deadlineMs: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < deadlineMs) {
    const unsent = [...(await metric(metricsUrl, 'virtfleet_events_unsent')).values()][0] ?? 0;
    const queued = [...(await metric(metricsUrl, 'virtfleet_workqueue_depth{')).values()].reduce((a, b) => a + b, 0);
    if (unsent === 0 && queued === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return performance.now() - start;
}

/** Reconciles so far per controller: how many, and their seconds in all. */
export type Work = Map<string, { count: number; seconds: number }>;

export async function reconcileWork(metricsUrl: string): Promise<Work> {
  const counts = await metric(metricsUrl, 'virtfleet_reconcile_total{');
  const sums = await metric(metricsUrl, 'virtfleet_reconcile_duration_seconds_sum{');
  const work: Work = new Map();
  const controllerOf = (series: string) => /controller="([^"]+)"/.exec(series)?.[1] ?? '?';
  for (const [series, value] of counts) {
    const entry = work.get(controllerOf(series)) ?? { count: 0, seconds: 0 };
    entry.count += value;
    work.set(controllerOf(series), entry);
  }
  for (const [series, value] of sums) {
    const entry = work.get(controllerOf(series)) ?? { count: 0, seconds: 0 };
    entry.seconds += value;
    work.set(controllerOf(series), entry);
  }
  return work;
}

/** What the settled fleet cost in the window, per host and per second. */
export function settledCost(options: {
  windowMs: number;
  hosts: number;
  heartbeatSeconds: number;
  before: Work;
  after: Work;
  /** CPU seconds of the controller in the window: all threads, and the JavaScript thread. */
  cpu: number;
  jsCpu: number;
}): string[] {
  const { windowMs, hosts, before, after, cpu, jsCpu, heartbeatSeconds } = options;
  const seconds = windowMs / 1000;
  const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  const lines = [
    `  controller CPU: ${cpu.toFixed(2)} s in ${seconds} s (${((cpu / seconds) * 100).toFixed(1)} % of a core; JavaScript thread ${jsCpu.toFixed(2)} s)` +
      ` = ${ms(((cpu / seconds) * 1000) / hosts)} ms of CPU per host per second (heartbeat every ${heartbeatSeconds} s: ${ms(((cpu * heartbeatSeconds) / seconds / hosts) * 1000)} ms per host per heartbeat)`,
  ];
  for (const [controller, work] of after) {
    const count = work.count - (before.get(controller)?.count ?? 0);
    const busy = work.seconds - (before.get(controller)?.seconds ?? 0);
    if (count === 0) continue;
    lines.push(
      `  ${controller} reconciles: ${count} (${(count / seconds).toFixed(1)}/s), ${ms((busy / count) * 1000)} ms each (wall, awaits included)` +
        (controller === 'hostpool'
          ? `; ${ms(((busy / seconds) * 1000) / hosts)} ms of reconcile per host per second`
          : ''),
    );
  }
  return lines;
}
