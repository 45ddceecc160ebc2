// The leader's pod label (src/runtime/leader-pod-label.ts), through real `virtfleet controller`
// processes on the real API server, each given a Pod object of its own by POD_NAME/POD_NAMESPACE
// (the API server stores the Pods; no kubelet runs them): the leader's pod carries the label that
// Service virtfleet-install selects, a start clears a label a dead process left on its pod, and
// the label comes off when leadership is lost or the process stops.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../../src/devstack/binaries.js';
import { freePort } from '../../../src/devstack/ports.js';
import { isConflict, type KubeObject } from '../../../src/runtime/kube-client.js';
import { LEASE } from '../../../src/runtime/leader-election.js';
import { POD } from '../../../src/runtime/leader-pod-label.js';
import { abortableDelay } from '../../../src/runtime/abort.js';
import { client, freshNamespace, Signal } from './fixtures.js';
import { kubeconfigPath } from '../../harness/kube.js';

const LEASE_ID = 'virtfleet-pod-label';
/** What Service virtfleet-install selects (checked against deploy/base/install-service.yaml below). */
const LABEL = 'virtfleet.io/install-endpoint-leader';
const kube = client();

interface Replica {
  name: string;
  child: ChildProcess;
  messages: string[];
  output: Signal;
  exited: Promise<number | null>;
}

const replicas: Replica[] = [];

async function startReplica(
  pod: string,
  namespace: string,
  options: { env?: Record<string, string | undefined>; args?: string[] } = {},
): Promise<Replica> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'controller',
      '--kubeconfig',
      kubeconfigPath(),
      '--leader-elect',
      '--leader-election-namespace',
      namespace,
      '--leader-election-id',
      LEASE_ID,
      '--lease-duration',
      '4',
      '--renew-deadline',
      '3',
      '--retry-period',
      '1',
      '--health-address',
      `127.0.0.1:${await freePort()}`,
      '--metrics-address',
      `127.0.0.1:${await freePort()}`,
      ...(options.args ?? []),
    ],
    {
      cwd: repoRoot(),
      env: { ...process.env, POD_NAME: pod, POD_NAMESPACE: namespace, ...options.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const replica: Replica = {
    name: pod,
    child,
    messages: [],
    output: new Signal(),
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) replica.messages.push((JSON.parse(line) as { msg: string }).msg);
    replica.output.poke();
  });
  child.once('exit', () => replica.output.poke());
  replicas.push(replica);
  return replica;
}

function logged(replica: Replica, msg: string): Promise<void> {
  return replica.output.until(() => replica.messages.includes(msg), 60_000, `${replica.name} to log "${msg}"`);
}

/** The replica's exit code; fails naming what it logged if it does not end. */
async function exitOf(replica: Replica): Promise<number | null> {
  const ended = () => replica.child.exitCode !== null || replica.child.signalCode !== null;
  await replica.output.until(ended, 60_000, `${replica.name} to exit`).catch((error: Error) => {
    throw new Error(`${error.message}; it logged: ${replica.messages.join(' | ')}`);
  });
  return replica.exited;
}

async function createPod(namespace: string, name: string, labels: Record<string, string> = {}): Promise<void> {
  await kube.create(POD, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: 'virtfleet-test', ...labels } },
    spec: { containers: [{ name: 'controller', image: 'virtfleet:test' }] },
  });
}

/** The label's value on the pod (undefined: not there). */
async function labelOf(namespace: string, name: string): Promise<string | undefined> {
  return (await kube.get<KubeObject>(POD, namespace, name)).metadata?.labels?.[LABEL];
}

/** What Service virtfleet-install selects: the pods with the label. */
async function selected(namespace: string): Promise<string[]> {
  const pods = await kube.list<KubeObject>(POD, { namespace, labelSelector: `${LABEL}=true` });
  return pods.items.map((pod) => pod.metadata!.name!).sort();
}

/** Holds the leader Lease as another identity, renewing it, until `stop` aborts. */
async function holdLease(namespace: string, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    const lease = await kube.get<KubeObject & { spec: Record<string, unknown> }>(LEASE, namespace, LEASE_ID);
    try {
      await kube.replace(LEASE, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: new Date().toISOString().replace('Z', '000Z') },
      });
    } catch (error) {
      if (!isConflict(error)) throw error;
      continue;
    }
    await abortableDelay(500, stop);
  }
}

afterAll(async () => {
  for (const replica of replicas)
    if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill('SIGKILL');
  await Promise.all(replicas.map((replica) => replica.exited));
});

describe("the leader's pod label", () => {
  it("is the label deploy/'s Service virtfleet-install selects", () => {
    const service = parse(readFileSync(join(repoRoot(), 'deploy/base/install-service.yaml'), 'utf8')) as {
      spec: { selector: Record<string, string> };
    };
    expect(service.spec.selector).toEqual({ 'app.kubernetes.io/component': 'controller', [LABEL]: 'true' });
  });

  it('marks only the leader pod, is cleared at start when stale, and comes off on lost leadership and on stop', async () => {
    const namespace = await freshNamespace(kube, 'podlabel');
    await createPod(namespace, 'pod-a');
    // As a process of pod-b that died leading leaves it.
    await createPod(namespace, 'pod-b', { [LABEL]: 'true' });

    const a = await startReplica('pod-a', namespace);
    await logged(a, 'labelled this pod as the leader');
    expect(await labelOf(namespace, 'pod-a')).toBe('true');

    const b = await startReplica('pod-b', namespace);
    await logged(b, 'cache synced');
    expect(b.messages).toContain('cleared the leader label a previous process of this pod left');
    expect(b.messages).not.toContain('became the leader');
    expect(await labelOf(namespace, 'pod-b')).toBeUndefined();
    expect(await selected(namespace)).toEqual(['pod-a']);
    // The label is the only change: the pods' own labels stay.
    expect((await kube.get<KubeObject>(POD, namespace, 'pod-b')).metadata?.labels).toEqual({ app: 'virtfleet-test' });

    // Another holder takes the Lease: a cannot renew, loses leadership and exits.
    const intruder = new AbortController();
    const holding = holdLease(namespace, intruder.signal);
    // The process ends (exit 1: nothing may act without the lease), the label taken off first.
    expect(await exitOf(a)).toBe(1);
    intruder.abort();
    await holding;
    expect(a.messages).toContain('no longer the leader');
    expect(a.messages).toContain('took the leader label off this pod');
    expect(await labelOf(namespace, 'pod-a')).toBeUndefined();

    // b takes the expired Lease and its pod is the one selected.
    await logged(b, 'labelled this pod as the leader');
    expect(await selected(namespace)).toEqual(['pod-b']);

    // A clean stop takes the label off before the Lease is released.
    b.child.kill('SIGTERM');
    expect(await exitOf(b)).toBe(0);
    const order = b.messages.filter(
      (msg) => msg === 'took the leader label off this pod' || msg === 'released the leader lease',
    );
    expect(order).toEqual(['took the leader label off this pod', 'released the leader lease']);
    expect(await selected(namespace)).toEqual([]);
  }, 180_000);

  it('outside a pod labels nothing and says so once; a POD_NAME with no such pod is a warning, not a stop', async () => {
    const namespace = await freshNamespace(kube, 'podlabel');
    const outside = await startReplica('unused', namespace, {
      env: { POD_NAME: undefined },
      args: ['--log-level', 'debug'],
    });
    await logged(outside, 'became the leader');
    outside.child.kill('SIGTERM');
    expect(await exitOf(outside)).toBe(0);
    const said = 'POD_NAME or POD_NAMESPACE is not set: no pod is labelled as the leader';
    expect(outside.messages.filter((msg) => msg === said)).toHaveLength(1);
    expect(outside.messages.filter((msg) => /label/.test(msg) && msg !== said)).toEqual([]);

    const missing = await startReplica('no-such-pod', namespace);
    await logged(missing, 'this pod does not exist: it cannot be labelled as the leader');
    expect(missing.messages).toContain('became the leader');
    missing.child.kill('SIGTERM');
    expect(await exitOf(missing)).toBe(0);
    expect(await selected(namespace)).toEqual([]);
  }, 180_000);
});
