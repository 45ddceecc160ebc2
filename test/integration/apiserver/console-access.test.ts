// `virtfleet api` behind the real kube-apiserver's aggregator: who gets a console, and what
// everyone else hears. 401 for anything not from the front proxy, 403 from the
// SubjectAccessReview (before the VM is looked at), 404 for an unknown VM, 409 for one that
// is not running; the same for vnc, and its bridge to a VNC server; and for people bound to the roles of deploy/base/user-roles.yaml, a
// SelfSubjectAccessReview answers as the stream does. The test driver has no console streams,
// so sessions themselves are tested on the rig (test/e2e/console-rig.test.ts).
//
// `virtfleet api` runs as the ServiceAccount of deploy/, with just the RBAC deploy/ gives it.
// Its own control plane: the APIService v1alpha1.subresources.virtfleet.io is one per cluster,
// and the shared one gets deploy/'s (test/integration/deploy.test.ts applies it).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectConsole, connectSubresource, ConsoleRefusedError } from '../../../src/cli/console.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { repoRoot } from '../../../src/devstack/binaries.js';
import { ControlPlane } from '../../../src/devstack/controlplane.js';
import { installCrds } from '../../../src/devstack/crds.js';
import type { Pki } from '../../../src/devstack/pki.js';
import { isNotFound, KubeClient, type KubeObject, type ResourceType } from '../../../src/runtime/kube-client.js';
import { ApiServerProcess } from '../../harness/api-server.js';
import { KubeConfig } from '@kubernetes/client-node';
import { clientCert, testUser, type TestUser } from '../../harness/users.js';

const NS = 'console-access';
const NAMESPACE: ResourceType = {
  kind: 'Namespace',
  group: '',
  version: 'v1',
  plural: 'namespaces',
  namespaced: false,
};
const ROLE_BINDING: ResourceType = {
  kind: 'RoleBinding',
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'rolebindings',
  namespaced: true,
};

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-api-it-'));
const plane = new ControlPlane({ stateDir: join(dir, 'control-plane'), unsafeNoFsync: true });
let admin: KubeClient;
let pki: Pki;
let api: ApiServerProcess;
let kubectlAs: (args: string[]) => Promise<string>;
const people: Record<'admin' | 'edit' | 'view' | 'nobody', TestUser> = {} as never;

/** Refusal of a console request: [HTTP status, message]; [101, ''] when the WebSocket opened. */
async function consoleAnswer(user: TestUser, name: string): Promise<[number, string]> {
  try {
    const ws = await connectConsole(user.kubeConfig, NS, name);
    ws.terminate();
    return [101, ''];
  } catch (error) {
    if (error instanceof ConsoleRefusedError) return [error.code, error.message];
    throw error;
  }
}

/** A path of the aggregated OpenAPI v3, asked for until it is served (404 meanwhile) or `timeoutMs` passed. */
async function openApiV3(path: string, timeoutMs: number): Promise<{ paths: Record<string, unknown> }> {
  for (const deadline = Date.now() + timeoutMs; ;) {
    try {
      return await admin.request<{ paths: Record<string, unknown> }>('GET', path);
    } catch (error) {
      if (!isNotFound(error) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The same for a vnc request. */
async function vncAnswer(user: TestUser, name: string): Promise<[number, string]> {
  try {
    const ws = await connectSubresource(user.kubeConfig, NS, name, 'vnc');
    ws.terminate();
    return [101, ''];
  } catch (error) {
    if (error instanceof ConsoleRefusedError) return [error.code, error.message];
    throw error;
  }
}

/** A GET straight to the API server's port (as if to its Service), with the given client cert. */
function direct(path: string, cert?: { cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${api.port}${path}`,
      {
        ca: readFileSync(pki.caCert),
        ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
        headers: { 'X-Remote-User': 'system:admin', 'X-Remote-Group': 'system:masters' },
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function kubectlRun(kubectl: string, kubeconfig: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(kubectl, ['--kubeconfig', kubeconfig, ...args], (error, stdout, stderr) =>
      error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

/**
 * A kubeconfig of the ServiceAccount virtfleet-api, with the RBAC of deploy/base/api-server-rbac.yaml
 * and a token from the TokenRequest API: the API server runs with what deploy/ grants it, no more.
 */
async function serviceAccountKubeconfig(kubectl: string, kubeconfig: string, server: string): Promise<string> {
  const run = (args: string[]) => kubectlRun(kubectl, kubeconfig, args);
  await run(['create', 'namespace', 'virtfleet-system']);
  await run(['create', 'serviceaccount', 'virtfleet-api', '-n', 'virtfleet-system']);
  await run(['apply', '-n', 'virtfleet-system', '-f', join(repoRoot(), 'deploy/base/api-server-rbac.yaml')]);
  const token = (await run(['create', 'token', 'virtfleet-api', '-n', 'virtfleet-system', '--duration=1h'])).trim();
  const path = join(dir, 'virtfleet-api.kubeconfig');
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server, caData: readFileSync(pki.caCert).toString('base64') }],
    users: [{ name: 'virtfleet-api', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'virtfleet-api' }],
    currentContext: 'test',
  });
  writeFileSync(path, config.exportConfig(), { mode: 0o600 });
  return path;
}

beforeAll(async () => {
  const info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  pki = info.pki;
  const config = new KubeConfig();
  config.loadFromFile(info.kubeconfig);
  admin = new KubeClient(config);
  kubectlAs = (args) => kubectlRun(info.binaries.kubectl, info.kubeconfig, args);
  const own = await serviceAccountKubeconfig(info.binaries.kubectl, info.kubeconfig, info.server);
  api = new ApiServerProcess(own, pki, join(dir, 'api.log'));
  await api.start(admin);
  await kubectlRun(info.binaries.kubectl, info.kubeconfig, [
    'apply',
    '--server-side',
    '-f',
    join(repoRoot(), 'deploy/base/user-roles.yaml'),
  ]);
  await admin.create(NAMESPACE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const ca = { cert: pki.caCert, key: pki.caKey };
  for (const role of ['admin', 'edit', 'view', 'nobody'] as const) {
    people[role] = testUser(dir, admin.server, ca, `console-${role}`);
    if (role === 'nobody') continue;
    await admin.create(ROLE_BINDING, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `console-${role}`, namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `virtfleet-${role}` },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `console-${role}` }],
    });
  }
  await admin.create(VIRTUAL_MACHINE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'idle', namespace: NS },
    spec: { hostPoolRef: { name: 'nowhere' }, memory: '128Mi', kernelBoot: { kernel: '/boot/vmlinuz' } },
  } as KubeObject);
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await plane.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('virtfleet api behind the aggregator', () => {
  it('is listed in discovery with the console, vnc and upload subresources and their OpenAPI', async () => {
    const list = await admin.request<{ resources: Array<{ name: string; verbs: string[] }> }>(
      'GET',
      '/apis/subresources.virtfleet.io/v1alpha1',
    );
    expect(list.resources).toEqual([
      expect.objectContaining({ name: 'virtualmachines/console', verbs: ['get'] }),
      expect.objectContaining({ name: 'virtualmachines/vnc', verbs: ['get'] }),
      expect.objectContaining({ name: 'virtualmachineimages/upload', verbs: ['create'] }),
    ]);
    // The aggregator fetches an APIService's OpenAPI v3 in the background after it turns
    // Available (about 0.3 s here): until then the path is a 404, so ask until it is served.
    const openapi = await openApiV3('/openapi/v3/apis/subresources.virtfleet.io/v1alpha1', 30_000);
    for (const sub of ['console', 'vnc'])
      expect(Object.keys(openapi.paths)).toContain(
        `/apis/subresources.virtfleet.io/v1alpha1/namespaces/{namespace}/virtualmachines/{name}/${sub}`,
      );
    expect(Object.keys(openapi.paths)).toContain(
      '/apis/subresources.virtfleet.io/v1alpha1/namespaces/{namespace}/virtualmachineimages/{name}/upload',
    );
  });

  it('answers 401 to a request that does not come from the front proxy, whatever headers it sends', async () => {
    expect((await direct('/apis/subresources.virtfleet.io/v1alpha1')).status).toBe(401);
    // A client certificate of the cluster CA (kube-apiserver's users), not the requestheader CA.
    const viaClusterCa = await direct('/apis/subresources.virtfleet.io/v1alpha1', {
      cert: pki.adminCert,
      key: pki.adminKey,
    });
    expect(viaClusterCa.status).toBe(401);
    expect(viaClusterCa.body).toMatch(/not signed by the requestheader CA/);
    // The requestheader CA, but a name that is not in requestheader-allowed-names.
    const other = clientCert(dir, { cert: pki.frontProxyCaCert, key: pki.frontProxyCaKey }, 'not-the-proxy');
    const wrongName = await direct(
      `/apis/subresources.virtfleet.io/v1alpha1/namespaces/${NS}/virtualmachines/idle/console`,
      other,
    );
    expect(wrongName.status).toBe(401);
    expect(wrongName.body).toMatch(/not-the-proxy.*not a requestheader-allowed-name/);
    // The front proxy's own certificate is accepted: the same path answers past authentication.
    const proxy = await direct('/apis/subresources.virtfleet.io/v1alpha1', {
      cert: pki.frontProxyClientCert,
      key: pki.frontProxyClientKey,
    });
    expect(proxy.status).toBe(200);
  });

  it('answers 403 from the SubjectAccessReview, before looking at the VM', async () => {
    const [code, message] = await consoleAnswer(people.nobody, 'idle');
    expect(code).toBe(403);
    expect(message).toMatch(
      /User "console-nobody" cannot get resource "virtualmachines\/console" in API group "subresources.virtfleet.io"/,
    );
    // An unknown VM is a 403 too: no access, no knowledge of what exists.
    expect((await consoleAnswer(people.nobody, 'no-such-vm'))[0]).toBe(403);
  });

  it('answers 404 for an unknown VM and 409 with the phase for one that is not running', async () => {
    const [missing, missingMessage] = await consoleAnswer(people.edit, 'no-such-vm');
    expect(missing).toBe(404);
    expect(missingMessage).toMatch(/"no-such-vm" not found/);
    const [idle, idleMessage] = await consoleAnswer(people.edit, 'idle');
    expect(idle).toBe(409);
    expect(idleMessage).toMatch(/is not running \(phase Pending\)/);
  });

  it('refuses a name that is not a Kubernetes name with 400, naming the problem', async () => {
    const [code] = await consoleAnswer(people.admin, 'Not_A_Name');
    expect(code).toBe(400);
  });

  // `kubectl auth can-i get virtualmachines.subresources.virtfleet.io --subresource=console`
  // cannot be used: discovery of the group lists only subresources (virtualmachines/console, as
  // KubeVirt's lists virtualmachineinstances/console), kubectl's mapper skips those, and it then
  // sends the whole argument as the resource with no group. So the same question goes as
  // kubectl would send it: a SelfSubjectAccessReview, made with the user's own credentials.
  it.each(['admin', 'edit', 'view', 'nobody'] as const)(
    'answers as a SelfSubjectAccessReview does for a user bound to virtfleet-%s',
    async (role) => {
      const user = people[role];
      const review = await new KubeClient(user.kubeConfig).request<{ status: { allowed?: boolean } }>(
        'POST',
        '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: {
              resourceAttributes: {
                group: 'subresources.virtfleet.io',
                resource: 'virtualmachines',
                subresource: 'console',
                verb: 'get',
                namespace: NS,
                name: 'idle',
              },
            },
          },
        },
      );
      const allowed = review.status.allowed === true;
      expect(allowed).toBe(role === 'admin' || role === 'edit');
      const [code] = await consoleAnswer(user, 'idle');
      // Past authorization the idle VM answers 409; a refused user never gets that far.
      expect(code).toBe(allowed ? 409 : 403);
    },
  );

  it.each([
    ['get', 'hostpools.virtfleet.io', true],
    ['get', 'virtualmachines.virtfleet.io -n any', true],
    ['get', 'secrets -n virtfleet-system', true],
    ['list', 'secrets -n virtfleet-system', false],
    ['get', 'secrets -n default', false],
    ['patch', 'virtualmachines.virtfleet.io -n any', false],
    ['create', 'subjectaccessreviews.authorization.k8s.io', true],
    ['watch', 'configmaps/extension-apiserver-authentication -n kube-system', true],
    ['get', 'configmaps -n kube-system', false],
  ] as const)('deploy/ lets its ServiceAccount %s %s: %s', async (verb, what, expected) => {
    const answer = await kubectlAs([
      'auth',
      'can-i',
      '--as',
      'system:serviceaccount:virtfleet-system:virtfleet-api',
      verb,
      ...what.split(' '),
    ]).catch((error: Error) => error.message);
    expect(answer.trim().endsWith('yes')).toBe(expected);
  });
});

/**
 * A VM whose status says it runs on host `host` of pool `pool` with its VNC server at `graphics`,
 * as the controller records it (no controller runs here: the status is written as it would).
 */
async function runningVm(name: string, pool: string, host: string, graphics: Record<string, unknown>): Promise<void> {
  await admin.create(VIRTUAL_MACHINE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: NS },
    spec: { hostPoolRef: { name: pool }, memory: '128Mi', kernelBoot: { kernel: '/boot/vmlinuz' }, graphics: {} },
  } as KubeObject);
  await admin.patch(
    VIRTUAL_MACHINE,
    NS,
    name,
    { status: { phase: 'Running', host, graphics: { type: 'vnc', host, ...graphics } } },
    { subresource: 'status' },
  );
}

async function hostPoolOf(name: string, host: string, uri: string): Promise<void> {
  await admin.create(HOST_POOL, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'HostPool',
    metadata: { name },
    spec: { hosts: [{ name: host, uri }] },
  } as KubeObject);
}

describe('the vnc subresource', () => {
  beforeAll(async () => {
    await admin.create(VIRTUAL_MACHINE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'idle-vnc', namespace: NS },
      spec: {
        hostPoolRef: { name: 'nowhere' },
        memory: '128Mi',
        kernelBoot: { kernel: '/boot/vmlinuz' },
        graphics: {},
      },
    } as KubeObject);
    // A host with a hostname in its URI is another machine, though this one is loopback: nothing connects to it.
    await hostPoolOf('vnc-far', 'far', 'qemu+tcp://127.0.0.1/system');
    await hostPoolOf('vnc-near', 'near', 'qemu:///system');
  }, 60_000);

  it('answers 403 from the SubjectAccessReview to a user without the verb (nobody, view)', async () => {
    const [code, message] = await vncAnswer(people.nobody, 'idle-vnc');
    expect(code).toBe(403);
    expect(message).toMatch(
      /User "console-nobody" cannot get resource "virtualmachines\/vnc" in API group "subresources.virtfleet.io"/,
    );
    expect((await vncAnswer(people.nobody, 'no-such-vm'))[0]).toBe(403);
    expect((await vncAnswer(people.view, 'idle-vnc'))[0]).toBe(403);
  });

  it('answers 404 for an unknown VM, 409 for one without spec.graphics and for one not running, naming why', async () => {
    const [missing, missingMessage] = await vncAnswer(people.edit, 'no-such-vm');
    expect(missing).toBe(404);
    expect(missingMessage).toMatch(/"no-such-vm" not found/);
    const [bare, bareMessage] = await vncAnswer(people.edit, 'idle');
    expect(bare).toBe(409);
    expect(bareMessage).toMatch(/idle has no graphical console: add spec.graphics/);
    const [idle, idleMessage] = await vncAnswer(people.admin, 'idle-vnc');
    expect(idle).toBe(409);
    expect(idleMessage).toMatch(/idle-vnc is not started yet, not Running/);
  });

  it('refuses a VNC socket on another host with 409 naming graphics.listen.network', async () => {
    await runningVm('far-socket', 'vnc-far', 'far', { socket: '/var/lib/libvirt/qemu/domain-1-x/vnc.sock' });
    const [code, message] = await vncAnswer(people.edit, 'far-socket');
    expect(code).toBe(409);
    expect(message).toMatch(/UNIX socket on host far .*set graphics\.listen\.network in HostPool vnc-far/);
  });

  it('answers 503 naming the address when the VNC server does not accept the connection', async () => {
    await runningVm('near-gone', 'vnc-near', 'near', { socket: join(dir, 'no-such.sock') });
    const [code, message] = await vncAnswer(people.edit, 'near-gone');
    expect(code).toBe(503);
    expect(message).toMatch(/cannot connect to the VNC server of near-gone at socket .*no-such\.sock on host near/);
  });

  // The bridge itself, against a socket server that answers the RFB greeting and echoes what it
  // gets: bytes both ways, in order, none lost when far more than the buffers are sent at once.
  // (QEMU's own VNC server is read through the CLI on the rig: test/e2e/console-rig.test.ts.)
  it('carries bytes both ways between the WebSocket and a local VNC socket, in order', async () => {
    const path = join(dir, 'vnc.sock');
    const server = createServer((peer) => {
      peer.write('RFB 003.008\n');
      peer.pipe(peer);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      await runningVm('near-echo', 'vnc-near', 'near', { socket: path });
      const ws = await connectSubresource(people.admin.kubeConfig, NS, 'near-echo', 'vnc');
      const received: Buffer[] = [];
      let size = 0;
      const payload = randomBytes(3 << 20);
      const all = new Promise<Buffer>((resolve) =>
        ws.on('message', (data: Buffer) => {
          received.push(data);
          size += data.length;
          if (size >= 12 + payload.length) resolve(Buffer.concat(received));
        }),
      );
      for (let at = 0; at < payload.length; at += 32 << 10) ws.send(payload.subarray(at, at + (32 << 10)));
      const got = await all;
      expect(got.subarray(0, 12).toString()).toBe('RFB 003.008\n');
      expect(got.subarray(12).equals(payload)).toBe(true);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.close(1000, 'done');
      expect(await closed).toBe(1000);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 60_000);
});
