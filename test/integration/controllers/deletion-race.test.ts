// A VM the API server deletes although it carries the controller's finalizer: a DELETE that read
// the VM before the finalizer was added removes it regardless (kubernetes#77988, still open; the
// faults-under-load storm saw it under load, and the VM's domain stayed running on its host with
// no object left to clean it up). Here the race is made certain with a real admission webhook on
// the real API server: the DELETE is read before the controller ever runs, held in its admission
// step until the controller has added its finalizer and started the domain, then let go. The
// controller must then do the deletion's work from the watch's DELETED event: Deleted Event
// first, then the domain gone from its host.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { VIRTUAL_MACHINE, VM_FINALIZER, type VmObject } from '../../../src/controllers/resources.js';
import type { ResourceType } from '../../../src/runtime/kube-client.js';
import { ControllerBench, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'race-a', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const bench = new ControllerBench('del-race');
const WEBHOOKS: ResourceType = {
  kind: 'ValidatingWebhookConfiguration',
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'validatingwebhookconfigurations',
  namespaced: false,
};
const TARGET = 'raced';

let dir: string;
let server: Server;
let webhookName: string;
/** Names of the VMs whose DELETE the webhook saw, with the finalizers of the object it was asked about. */
const seen: Array<{ name: string; finalizers: string[] }> = [];
let release: () => void = () => undefined;
const released = new Promise<void>((resolve) => (release = resolve));
/** VMs whose DELETED watch event the test saw, as the API server last stored them. */
const deletedEvents: VmObject[] = [];

type Review = {
  request: { uid: string; name?: string; namespace?: string; oldObject?: { metadata?: { finalizers?: string[] } } };
};

/** Allows every DELETE; holds the first one of TARGET until `release()`. */
async function admit(review: Review): Promise<unknown> {
  const { request } = review;
  const first = request.name === TARGET && !seen.some((s) => s.name === TARGET);
  seen.push({ name: request.name ?? '', finalizers: request.oldObject?.metadata?.finalizers ?? [] });
  if (first) await released;
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, allowed: true } };
}

/** Polls `check` (which reads what no watch of the test tells about) until it holds or `ms` pass. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check());) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  // The webhook's serving certificate, self-signed for 127.0.0.1: its own CA bundle.
  dir = mkdtempSync(join(tmpdir(), 'virtfleet-del-race-'));
  const [cert, key] = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
  // prettier-ignore
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      void admit(JSON.parse(body) as Review).then((answer) =>
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await bench.start();
  bench.vms.on((event) => {
    if (event.type === 'delete' && !event.finalStateUnknown) deletedEvents.push(event.object);
  });
  webhookName = `hold-delete-${bench.namespace}`;
  await bench.kube.create(WEBHOOKS, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: webhookName },
    webhooks: [
      {
        name: 'hold-delete.virtfleet.test',
        clientConfig: {
          url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`,
          caBundle: readFileSync(cert).toString('base64'),
        },
        rules: [
          {
            apiGroups: ['virtfleet.io'],
            apiVersions: ['v1alpha1'],
            operations: ['DELETE'],
            resources: ['virtualmachines'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': bench.namespace } },
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        failurePolicy: 'Fail',
        timeoutSeconds: 30,
      },
    ],
  });
}, 60_000);

afterAll(async () => {
  release();
  await bench.kube.delete(WEBHOOKS, undefined, webhookName).catch(() => undefined);
  await bench.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 90_000);

describe('a VM deleted by the API server under its finalizer (kubernetes#77988)', () => {
  it('has its domain removed and a Deleted Event recorded, from the watch’s DELETED event', async () => {
    const pool = await bench.createPool('race', [A]);
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'the host ready');
    // The API server takes a while to call a new webhook: probe with throw-away VMs (the
    // controller is stopped, so they carry no finalizer and go at once) until it is called.
    await bench.stopController();
    let probes = 0;
    await eventually(
      async () => {
        const name = `probe-${probes++}`;
        await bench.createVm(name, pool);
        await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, name);
        return seen.some((s) => s.name === name);
      },
      30_000,
      'the webhook to be called',
    );

    // The DELETE reads the VM without a finalizer (nothing runs that could add one), then waits
    // in admission while the controller adds its finalizer and starts the domain.
    await bench.createVm(TARGET, pool, { runStrategy: 'Always' });
    const deletion = bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, TARGET);
    await eventually(() => Promise.resolve(seen.some((s) => s.name === TARGET)), 30_000, 'the DELETE in admission');
    expect(seen.find((s) => s.name === TARGET)?.finalizers).toEqual([]);
    await bench.startController();
    const running = await bench.untilVm(
      TARGET,
      (vm) => isRunning(vm) && (vm.metadata.finalizers ?? []).includes(VM_FINALIZER),
      'Running, with the finalizer',
    );
    const uid = running.metadata.uid!;
    expect((await bench.domains(A)).find((d) => d.uuid === uid)?.state).toBe('running');

    release();
    await deletion;
    // The race happened: the API server deleted the VM with the finalizer still on it.
    await bench.until(() => deletedEvents.some((vm) => vm.metadata.uid === uid), 30_000, 'the DELETED event');
    expect(deletedEvents.find((vm) => vm.metadata.uid === uid)?.metadata.finalizers).toContain(VM_FINALIZER);

    // The controller did the deletion's work all the same.
    await eventually(
      async () => !(await bench.domains(A)).some((d) => d.uuid === uid),
      30_000,
      'the domain to be removed from the host',
    );
    const events = (
      await bench.kube.list<{ reason?: string; type?: string; message?: string; involvedObject?: { uid?: string } }>(
        { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
        { namespace: bench.namespace },
      )
    ).items.filter((event) => event.involvedObject?.uid === uid && event.reason === 'Deleted');
    expect(events).toEqual([
      expect.objectContaining({ type: 'Warning', message: expect.stringContaining('kubernetes#77988') }),
    ]);
  }, 120_000);
});
