// Leader election between real controller processes on a real API server:
// never two leaders (from the processes' own logs, so the check covers every
// moment), a stopped leader hands over at once, a killed one within the lease
// duration.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from '../../../src/devstack/binaries.js';
import { freePort } from '../../../src/devstack/ports.js';
import { client, freshNamespace, Signal } from './fixtures.js';
import { kubeconfigPath } from '../../harness/kube.js';

const LEASE_SECONDS = 4;

interface Replica {
  name: string;
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  output: Signal;
  /** When this test killed it, if it did. */
  killedAt?: number;
  exited: Promise<number | null>;
}

const replicas: Replica[] = [];

async function startReplica(name: string, namespace: string): Promise<Replica> {
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
      'virtfleet-test',
      '--lease-duration',
      String(LEASE_SECONDS),
      '--renew-deadline',
      '3',
      '--retry-period',
      '1',
      '--health-address',
      `127.0.0.1:${await freePort()}`,
      '--metrics-address',
      `127.0.0.1:${await freePort()}`,
    ],
    { cwd: repoRoot(), env: { ...process.env, POD_NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const replica: Replica = {
    name,
    child,
    lines: [],
    output: new Signal(),
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) replica.lines.push(JSON.parse(line) as Record<string, unknown>);
    replica.output.poke();
  });
  child.once('exit', () => replica.output.poke());
  replicas.push(replica);
  return replica;
}

const loggedAt = (replica: Replica, msg: string) =>
  replica.lines.filter((line) => line.msg === msg).map((line) => Date.parse(line.time as string));

function becameLeader(replica: Replica): Promise<void> {
  return replica.output.until(
    () => loggedAt(replica, 'became the leader').length > 0,
    60_000,
    `${replica.name} to lead`,
  );
}

function cacheSynced(replica: Replica): Promise<void> {
  return replica.output.until(() => loggedAt(replica, 'cache synced').length > 0, 60_000, `${replica.name} to start`);
}

/** Each replica's leading intervals, from its own log (or the moment it was killed). */
function leadingIntervals(): Array<{ name: string; from: number; to: number }> {
  return replicas.flatMap((replica) => {
    const starts = loggedAt(replica, 'became the leader');
    const ends = loggedAt(replica, 'no longer the leader');
    return starts.map((from, i) => ({ name: replica.name, from, to: ends[i] ?? replica.killedAt ?? Date.now() }));
  });
}

afterAll(async () => {
  for (const replica of replicas)
    if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill('SIGKILL');
  await Promise.all(replicas.map((replica) => replica.exited));
});

describe('leader election', () => {
  it('has one leader at a time; a stopped leader hands over within 2 s, a killed one within the lease duration', async () => {
    const namespace = await freshNamespace(client(), 'leader');
    const a = await startReplica('replica-a', namespace);
    await becameLeader(a);
    const b = await startReplica('replica-b', namespace);
    await cacheSynced(b);
    expect(loggedAt(b, 'became the leader')).toEqual([]);

    const stoppedAt = Date.now();
    a.child.kill('SIGTERM');
    await becameLeader(b);
    expect(await a.exited).toBe(0);
    expect(loggedAt(a, 'released the leader lease')).toHaveLength(1);
    const handover = loggedAt(b, 'became the leader')[0]! - stoppedAt;
    expect(handover).toBeLessThan(2_000);

    const c = await startReplica('replica-c', namespace);
    await cacheSynced(c);
    b.killedAt = Date.now();
    b.child.kill('SIGKILL');
    await becameLeader(c);
    const takeover = loggedAt(c, 'became the leader')[0]! - b.killedAt;
    expect(takeover).toBeLessThanOrEqual(LEASE_SECONDS * 1000 + 1_000);

    // Never two leaders: no two leading intervals of different replicas overlap.
    const intervals = leadingIntervals();
    expect(intervals.map((i) => i.name)).toEqual(['replica-a', 'replica-b', 'replica-c']);
    for (const x of intervals)
      for (const y of intervals) if (x !== y) expect(x.to <= y.from || y.to <= x.from).toBe(true);
    process.stdout.write(
      `leader handover after SIGTERM: ${handover} ms; after SIGKILL: ${takeover} ms (lease ${LEASE_SECONDS} s)\n`,
    );
  }, 180_000);
});
