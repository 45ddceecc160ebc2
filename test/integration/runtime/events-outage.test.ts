// Events through an API server outage (issue 11): the recorder keeps what it could not write and
// writes it once the API server is back, with the time it happened; it never holds more than its
// cap (the rest counted as dropped), and gives up at once on an Event the API server refuses.
// Its own etcd + kube-apiserver, killed and restarted mid-test.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { ControlPlane } from '../../../src/devstack/controlplane.js';
import { CORE_EVENT, EventRecorder } from '../../../src/runtime/events.js';
import { KubeClient, type KubeObject } from '../../../src/runtime/kube-client.js';
import { captureLogs } from '../../harness/logs.js';
import { CONFIGMAP, configMap, freshNamespace } from './fixtures.js';

type EventObject = KubeObject & { reason?: string; count?: number; firstTimestamp?: string; lastTimestamp?: string };

const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-events-'));
const plane = new ControlPlane({ stateDir, unsafeNoFsync: true });
const logs = captureLogs();
let kube: KubeClient;

beforeAll(async () => {
  const info = await plane.start();
  const config = new KubeConfig();
  config.loadFromFile(info.kubeconfig);
  kube = new KubeClient(config);
}, 120_000);

afterAll(async () => {
  await plane.stop();
  rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

async function eventsIn(namespace: string): Promise<EventObject[]> {
  return (await kube.list<EventObject>(CORE_EVENT, { namespace })).items;
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = await registry.getSingleMetric(name)?.get();
  const values = found?.values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)) ?? [];
  return values.reduce((sum, v) => sum + v.value, 0);
}

/** Resolves once `check` holds, looking every 50 ms; rejects after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  for (const deadline = Date.now() + ms; !check();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Events while the API server is down', () => {
  it('are kept, written once it is back with the time they happened, a repeat counted once; beyond the cap, dropped and counted', async () => {
    const namespace = await freshNamespace(kube, 'events');
    const object = await kube.create(CONFIGMAP, configMap(namespace, 'subject', { v: '1' }));
    const registry = new Registry();
    const recorder = new EventRecorder(kube, {
      component: 'events-test',
      logger: logs.logger,
      maxQueued: 3,
      retryBackoff: { baseMs: 100, maxMs: 1_000 },
      registry,
    });
    await recorder.record(object, 'Normal', 'Before', 'written at once');

    await plane.killApiServer();
    const down = Date.now();
    const written: string[] = [];
    const during = ['During1', 'During2', 'Before'].map((reason) =>
      recorder
        .record(object, 'Normal', reason, reason === 'Before' ? 'written at once' : `recorded while the API was down`)
        .then(() => written.push(reason)),
    );
    // The cap is 3: a fourth waiting Event is dropped, and counted.
    await recorder.record(object, 'Warning', 'OverTheCap', 'no room');
    expect(recorder.dropped.queue_full).toBe(1);
    expect(await metric(registry, 'virtfleet_events_dropped_total', { reason: 'queue_full' })).toBe(1);
    await until(() => recorder.retries >= 3, 30_000, 'the writes to fail and be queued again');
    expect(recorder.unsent).toBe(3);
    expect(await metric(registry, 'virtfleet_events_unsent')).toBe(3);
    expect(written).toEqual([]);

    await plane.restartApiServer();
    const up = Date.now();
    await Promise.all(during);
    expect(recorder.unsent).toBe(0);
    expect(await metric(registry, 'virtfleet_events_unsent')).toBe(0);
    expect(await metric(registry, 'virtfleet_events_retries_total')).toBe(recorder.retries);

    const events = await eventsIn(namespace);
    const byReason = new Map(events.map((e) => [e.reason, e]));
    expect([...byReason.keys()].sort()).toEqual(['Before', 'During1', 'During2']);
    expect(events).toHaveLength(3);
    for (const reason of ['During1', 'During2']) {
      const at = Date.parse(byReason.get(reason)!.firstTimestamp ?? '');
      // RFC 3339 in whole seconds: when it was recorded, within the outage, not when written.
      expect(at).toBeGreaterThanOrEqual(Math.floor(down / 1000) * 1000);
      expect(at).toBeLessThan(up);
      expect(byReason.get(reason)!.count).toBe(1);
    }
    expect(byReason.get('Before')!.count).toBe(2);
    expect(logs.lines().some((line) => /could not write an event yet/.test(String(line.msg)))).toBe(true);
    expect(logs.lines().some((line) => /writing events again/.test(String(line.msg)))).toBe(true);
  }, 180_000);

  it('gives up at once on an Event the API server refuses (its namespace does not exist), counted as refused', async () => {
    const registry = new Registry();
    const recorder = new EventRecorder(kube, {
      component: 'events-test',
      logger: logs.logger,
      retryBackoff: { baseMs: 100, maxMs: 1_000 },
      registry,
    });
    const ghost = configMap('no-such-namespace', 'ghost', {});
    await recorder.record({ ...ghost, metadata: { ...ghost.metadata, uid: 'x' } }, 'Normal', 'Nowhere', 'refused');
    expect(recorder.dropped.refused).toBe(1);
    expect(recorder.retries).toBe(0);
    expect(await metric(registry, 'virtfleet_events_dropped_total', { reason: 'refused' })).toBe(1);
  }, 60_000);
});
