// virtfleet_leader of a manager run without leader election (one replica, no --leader-elect):
// it leads alone, so it says so (lease="", 1) once its cache synced and its controllers run, as
// a replica with leader election does for its lease. Without the series, the
// VirtfleetControllerNotLeading alert paged for a healthy single replica.
import { afterAll, describe, expect, it } from '@jest/globals';
import { Manager } from '../../../src/runtime/manager.js';
import { kubeConfig } from '../../harness/kube.js';
import { captureLogs } from '../../harness/logs.js';

const stop = new AbortController();
let running: Promise<void> | undefined;

afterAll(async () => {
  stop.abort();
  await running;
});

async function leaderSeries(manager: Manager): Promise<string[]> {
  const text = await manager.metrics.registry.metrics();
  return text.split('\n').filter((line) => line.startsWith('virtfleet_leader'));
}

describe('virtfleet_leader without leader election', () => {
  it('is absent before the cache synced, 1 (no lease) while the controllers run, 0 once stopped', async () => {
    const { logger } = captureLogs();
    const manager = new Manager({ kubeConfig: kubeConfig(), logger });
    expect(await leaderSeries(manager)).toEqual([]);

    let started!: () => void;
    const controllersRun = new Promise<void>((resolve) => (started = resolve));
    let seenWhileRunning: string[] = [];
    manager.add({
      name: 'probe',
      run: async (signal) => {
        seenWhileRunning = await leaderSeries(manager);
        started();
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      },
    });
    running = manager.run(stop.signal);
    await controllersRun;
    expect(seenWhileRunning).toEqual(['virtfleet_leader{lease=""} 1']);

    stop.abort();
    await running;
    expect(await leaderSeries(manager)).toEqual(['virtfleet_leader{lease=""} 0']);
  }, 60_000);
});
