// /metrics of a running manager, in Prometheus text format, checked by
// promtool (the Prometheus project's own linter).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { freePort } from '../../../src/devstack/ports.js';
import { Controller } from '../../../src/runtime/controller.js';
import { Manager } from '../../../src/runtime/manager.js';
import { watchOwn } from '../../../src/runtime/sources.js';
import { kubeConfig } from '../../harness/kube.js';
import { captureLogs } from '../../harness/logs.js';
import { client, CONFIGMAP, configMap, freshNamespace, Signal, type ConfigMap } from './fixtures.js';

const stop = new AbortController();
const reconciled = new Signal();
let reconciles = 0;
let metricsUrl: string;
let running: Promise<void>;

beforeAll(async () => {
  const { logger } = captureLogs();
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  const manager = new Manager({
    kubeConfig: kubeConfig(),
    logger,
    metricsAddress: `127.0.0.1:${port}`,
    leaderElection: { namespace: await freshNamespace(client(), 'metrics'), name: 'metrics-test' },
  });
  // As addControllers does: every API request of the process is counted.
  manager.metrics.observeKubeClient(manager.client);
  // The per-host series, as the HostPool controller sets them (hostpool-hosts.test.ts checks
  // their values on a real pool); here they only have to be in the output promtool checks.
  const host = { pool: 'pool-a', host: 'host-1' };
  const metrics = manager.metrics;
  metrics.hostReady.set(host, 1);
  metrics.hostVms.set(host, 2);
  metrics.hostAllocatedCpus.set(host, 3);
  metrics.hostAllocatedMemory.set(host, 2 ** 30);
  metrics.hostCapacityCpus.set(host, 8);
  metrics.hostCapacityMemory.set(host, 16 * 2 ** 30);
  metrics.orphanDomains.set(host, 0);
  metrics.orphanScans.inc({ pool: 'pool-a', result: 'success' });
  const namespace = await freshNamespace(manager.client, 'metrics-cm');
  const informer = manager.cache.informerFor<ConfigMap>(CONFIGMAP, { namespace });
  manager.add(
    new Controller({
      name: 'configmaps',
      logger,
      metrics: manager.metrics,
      reconciler: {
        reconcile: async () => {
          reconciles++;
          reconciled.poke();
          if (reconciles === 1) throw new Error('one failure, so error metrics have samples');
        },
      },
      sources: [watchOwn(informer)],
    }),
  );
  running = manager.run(stop.signal);
  await manager.client.create(CONFIGMAP, configMap(namespace, 'one', { a: '1' }));
  await reconciled.until(() => reconciles >= 2, 60_000, 'a failed and a successful reconcile');
}, 90_000);

afterAll(async () => {
  stop.abort();
  await running;
});

describe('/metrics', () => {
  it('passes promtool check metrics and has the controller, work queue, leader, API request, host and process metrics', async () => {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (check.error)
      throw new Error(`promtool could not run (hack/setup.sh installs the prometheus package): ${check.error.message}`);
    expect({ status: check.status, problems: (check.stdout + check.stderr).trim() }).toEqual({
      status: 0,
      problems: '',
    });

    for (const name of [
      'virtfleet_workqueue_depth',
      'virtfleet_workqueue_adds_total',
      'virtfleet_workqueue_retries_total',
      'virtfleet_workqueue_queue_duration_seconds_bucket',
      'virtfleet_workqueue_work_duration_seconds_bucket',
      'virtfleet_reconcile_duration_seconds_bucket',
      'virtfleet_reconcile_errors_total',
      'virtfleet_reconcile_total',
      'virtfleet_leader',
      'virtfleet_kube_requests_total',
      'virtfleet_host_ready',
      'virtfleet_host_vms',
      'virtfleet_host_allocated_cpus',
      'virtfleet_host_allocated_memory_bytes',
      'virtfleet_host_capacity_cpus',
      'virtfleet_host_capacity_memory_bytes',
      'virtfleet_orphan_domains',
      'virtfleet_orphan_scans_total',
      'virtfleet_process_resident_memory_bytes',
      'virtfleet_nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
    }
    expect(text).toMatch(/^virtfleet_reconcile_errors_total\{controller="configmaps"\} 1$/m);
    expect(text).toMatch(/^virtfleet_leader\{lease="[^"]+\/metrics-test"\} 1$/m);
    // The test's own create of a ConfigMap, and the cache's list of them.
    expect(text).toMatch(/^virtfleet_kube_requests_total\{verb="create",resource="configmaps",code="2xx"\} 1$/m);
    expect(text).toMatch(/^virtfleet_kube_requests_total\{verb="list",resource="configmaps",code="2xx"\} [1-9]/m);
    expect(text).toMatch(/^virtfleet_host_allocated_memory_bytes\{pool="pool-a",host="host-1"\} 1073741824$/m);
  }, 60_000);
});
