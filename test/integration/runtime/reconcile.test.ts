// The runtime against the real API server: watch events reach the reconciler
// as keys, failures are retried with growing delays, and a burst of updates
// to one object never runs two reconciles of it at once.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { ControllerMetrics } from '../../../src/observability/metrics.js';
import { Cache } from '../../../src/runtime/cache.js';
import { Controller } from '../../../src/runtime/controller.js';
import type { Informer } from '../../../src/runtime/informer.js';
import { watchOwn } from '../../../src/runtime/sources.js';
import { captureLogs } from '../../harness/logs.js';
import { client, configMap, CONFIGMAP, freshNamespace, RecordingReconciler, type ConfigMap } from './fixtures.js';

const kube = client();
const stop = new AbortController();
const logs = captureLogs();
let namespace: string;
let informer: Informer<ConfigMap>;
let running: Promise<unknown>;
let reconciler: RecordingReconciler;
let controller: Controller;
const metrics = new ControllerMetrics(new Registry(), { processMetrics: false });

beforeAll(async () => {
  namespace = await freshNamespace(kube, 'runtime');
  const cache = new Cache(kube, logs.logger);
  informer = cache.informerFor<ConfigMap>(CONFIGMAP, { namespace });
  reconciler = new RecordingReconciler(
    (key) => informer.get(key),
    async ({ key }, attempt) => {
      const name = key.split('/')[1] ?? '';
      if (name.startsWith('flaky') && attempt <= 4) throw new Error(`flaky failure ${attempt}`);
      if (name.startsWith('stale') && attempt <= 2) {
        // A write from a stale read: the real API server answers 409 Conflict.
        const object = informer.get(key)!;
        await kube.replace(CONFIGMAP, {
          ...object,
          metadata: { ...object.metadata, resourceVersion: '1' },
          data: { v: 'from a stale read' },
        });
      }
      if (name.startsWith('slow')) await delay(200); // a slow reconcile, the scenario under test
    },
  );
  controller = new Controller({
    name: 'configmaps',
    reconciler,
    logger: logs.logger,
    metrics,
    concurrency: 4,
    backoff: { baseMs: 50, maxMs: 5_000 },
    sources: [watchOwn(informer)],
  });
  running = Promise.all([cache.run(stop.signal), cache.waitForSync().then(() => controller.run(stop.signal))]);
});

afterAll(async () => {
  stop.abort();
  await running;
});

describe('routine races with the API server', () => {
  it('treats a 409 Conflict as a reason to look again, not an error: no error log, not counted as a reconcile error', async () => {
    const key = `${namespace}/stale-1`;
    const errorsBefore = (await metrics.reconcileErrors.get()).values.reduce((sum, v) => sum + v.value, 0);
    await kube.create(CONFIGMAP, configMap(namespace, 'stale-1', { v: '1' }));
    await reconciler.changed.until(
      () => reconciler.seen.some((s) => s.key === key),
      30_000,
      'reconciled after the conflicts',
    );
    expect(reconciler.attempts.get(key)).toBe(3);
    const lines = logs.lines().filter((line) => line.key === key);
    expect(lines.filter((line) => Number(line.level) >= 40)).toEqual([]);
    expect(lines.some((line) => line.level === 20 && /changed or went away meanwhile/.test(String(line.msg)))).toBe(
      true,
    );
    expect((await metrics.reconcileErrors.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(errorsBefore);
    const results = (await metrics.reconcileTotal.get()).values.filter((v) => v.labels.result === 'conflict');
    expect(results.reduce((sum, v) => sum + v.value, 0)).toBeGreaterThanOrEqual(2);
  });
});

describe('controller runtime on a real API server', () => {
  it('reconciles creates, updates and deletes by key, reading the object from the cache', async () => {
    const key = `${namespace}/plain`;
    await kube.create(CONFIGMAP, configMap(namespace, 'plain', { v: '1' }));
    await reconciler.changed.until(
      () => reconciler.seen.some((s) => s.key === key && s.data?.v === '1'),
      30_000,
      'create',
    );

    await kube.patch(CONFIGMAP, namespace, 'plain', { data: { v: '2' } });
    await reconciler.changed.until(
      () => reconciler.seen.some((s) => s.key === key && s.data?.v === '2'),
      30_000,
      'update',
    );

    await kube.delete(CONFIGMAP, namespace, 'plain');
    await reconciler.changed.until(
      () => reconciler.seen.some((s) => s.key === key && s.data === undefined),
      30_000,
      'delete',
    );
  });

  it('retries a failing reconcile with growing delays until it succeeds', async () => {
    const key = `${namespace}/flaky`;
    await kube.create(CONFIGMAP, configMap(namespace, 'flaky', { v: '1' }));
    await reconciler.changed.until(
      () => reconciler.seen.some((s) => s.key === key),
      30_000,
      'the flaky object to reconcile',
    );

    expect(reconciler.attempts.get(key)).toBe(5);
    const retries = logs
      .lines()
      .filter((line) => line.key === key && line.msg === 'reconcile failed; retrying')
      .map((line) => line.retryInMs as number);
    expect(retries).toHaveLength(4);
    for (let i = 1; i < retries.length; i++) expect(retries[i]!).toBeGreaterThan(retries[i - 1]!);
  });

  it('collapses 100 updates during a slow reconcile: never two at once, few reconciles, the last state seen', async () => {
    const key = `${namespace}/slow`;
    await kube.create(CONFIGMAP, configMap(namespace, 'slow', { v: '0' }));
    await reconciler.changed.until(() => reconciler.seen.some((s) => s.key === key), 30_000, 'the first reconcile');
    const before = reconciler.seen.filter((s) => s.key === key).length;

    for (let i = 1; i <= 100; i++) await kube.patch(CONFIGMAP, namespace, 'slow', { data: { v: String(i) } });
    await reconciler.changed.until(
      () => reconciler.seen.some((s) => s.key === key && s.data?.v === '100'),
      60_000,
      'the last update',
    );

    const reconciles = reconciler.seen.filter((s) => s.key === key).length - before;
    expect(reconciles).toBeLessThan(25);
    // Other keys may run in parallel (concurrency 4); one key never does.
    expect(reconciler.overlaps).toBe(0);
  });
});
