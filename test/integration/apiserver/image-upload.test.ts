// The upload subresource (virtualmachineimages/upload) of `virtfleet api` behind the real
// kube-apiserver's aggregator, driven by `virtfleet image upload` as a user bound to deploy/'s
// roles: 403 for those without `create` on it, 404 and 409 for images that take no upload,
// 413 over the limit, and no image ever counted whole from a body cut short, a wrong sha256, a
// gzip file or a qcow2 cut short; a retry after a cut is taken. Hosts are libvirt's test driver
// (test:///default), which makes the volume but has no upload streams: so here a good file gets
// as far as the host, which refuses it, and status.upload says so; the whole way to Ready is
// on real libvirtd (bench/images/upload-throughput.ts).
//
// `virtfleet api` runs as the ServiceAccount of deploy/, with just the RBAC deploy/ gives it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KubeConfig } from '@kubernetes/client-node';
import { runUpload, uploadUrl, type UploadFlags } from '../../../src/cli/image.js';
import { VIRTUAL_MACHINE_IMAGE, type ImageObject } from '../../../src/controllers/image/resource.js';
import { HOST_POOL } from '../../../src/controllers/resources.js';
import { repoRoot } from '../../../src/devstack/binaries.js';
import { ControlPlane } from '../../../src/devstack/controlplane.js';
import { installCrds } from '../../../src/devstack/crds.js';
import { KubeClient, type KubeObject, type ResourceType } from '../../../src/runtime/kube-client.js';
import { ApiServerProcess, apiServiceAccountKubeconfig } from '../../harness/api-server.js';
import { testUser, type TestUser } from '../../harness/users.js';

const NS = 'image-upload';
const MiB = 2 ** 20;
const LIMIT = 8 * MiB;
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

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-upload-it-'));
const plane = new ControlPlane({ stateDir: join(dir, 'control-plane'), unsafeNoFsync: true });
let admin: KubeClient;
let api: ApiServerProcess;
const people: Record<'edit' | 'view' | 'nobody', TestUser> = {} as never;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function kubectlRun(kubectl: string, kubeconfig: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(kubectl, ['--kubeconfig', kubeconfig, ...args], (error, stdout, stderr) =>
      error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

function file(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** `virtfleet image upload` as `user`: [exit status, stdout + stderr]. */
async function upload(user: TestUser, name: string, path: string, extra: Partial<UploadFlags> = {}) {
  const lines: string[] = [];
  const flags: UploadFlags = {
    file: path,
    namespace: NS,
    kubeconfig: user.kubeconfigPath,
    wait: true,
    timeout: '60',
    ...extra,
  };
  try {
    await runUpload(name, flags, (line) => lines.push(line), { tty: false, write: (text) => lines.push(text) });
    return { ok: true, output: lines.join('') };
  } catch (error) {
    return { ok: false, output: `${lines.join('')}\nerror: ${error instanceof Error ? error.message : String(error)}` };
  }
}

async function createImage(name: string, source: Record<string, unknown>): Promise<void> {
  await admin.create(VIRTUAL_MACHINE_IMAGE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineImage',
    metadata: { name, namespace: NS },
    spec: { hostPoolRef: { name: 'upload-pool' }, source },
  } as KubeObject);
}

const getImage = (name: string) => admin.get<ImageObject>(VIRTUAL_MACHINE_IMAGE, NS, name);

/** A qcow2 made by qemu-img holding `mib` MiB of data (so its L2 table points at clusters). */
function qcow2(name: string, mib: number): string {
  const raw = file(`${name}.raw`, randomBytes(mib * MiB));
  const path = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path]);
  return path;
}

beforeAll(async () => {
  const info = await plane.start();
  await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
  const config = new KubeConfig();
  config.loadFromFile(info.kubeconfig);
  admin = new KubeClient(config);
  const kubectl = (args: string[]) => kubectlRun(info.binaries.kubectl, info.kubeconfig, args);
  const own = await apiServiceAccountKubeconfig(kubectl, info.server, info.pki.caCert, join(dir, 'api.kubeconfig'));
  api = new ApiServerProcess(own, info.pki, join(dir, 'api.log'), [
    '--max-upload-bytes',
    String(LIMIT),
    '--upload-dir',
    dir,
  ]);
  await api.start(admin);
  await kubectl(['apply', '--server-side', '-f', join(repoRoot(), 'deploy/base/user-roles.yaml')]);
  await admin.create(NAMESPACE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const ca = { cert: info.pki.caCert, key: info.pki.caKey };
  for (const role of ['edit', 'view', 'nobody'] as const) {
    people[role] = testUser(dir, admin.server, ca, `upload-${role}`);
    if (role === 'nobody') continue;
    await admin.create(ROLE_BINDING, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `upload-${role}`, namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `virtfleet-${role}` },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `upload-${role}` }],
    });
  }
  await admin.create(HOST_POOL, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'HostPool',
    metadata: { name: 'upload-pool' },
    spec: { hosts: [{ name: 'u1', uri: 'test:///default' }], storage: { pool: 'vf-upload', path: join(dir, 'pool') } },
  } as KubeObject);
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await plane.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('virtualmachineimages/upload behind the aggregator', () => {
  it('is listed in discovery with the verb create', async () => {
    const list = await admin.request<{ resources: Array<{ name: string; kind: string; verbs: string[] }> }>(
      'GET',
      '/apis/subresources.virtfleet.io/v1alpha1',
    );
    expect(list.resources).toContainEqual(
      expect.objectContaining({ name: 'virtualmachineimages/upload', kind: 'VirtualMachineImage', verbs: ['create'] }),
    );
  });

  it('answers 403 to users without create on virtualmachineimages/upload (view and nobody), before looking at the image', async () => {
    await createImage('rbac', { upload: {} });
    const data = file('rbac.raw', randomBytes(64 * 1024));
    const view = await upload(people.view, 'rbac', data, { wait: false });
    expect(view.ok).toBe(false);
    expect(view.output).toMatch(
      /HTTP 403.*User "upload-view" cannot create resource "virtualmachineimages\/upload" in API group "subresources.virtfleet.io"/,
    );
    // nobody may not even read the image (the CLI stops there): straight to the subresource.
    const nobody = await postRaw(people.nobody, 'rbac', data);
    expect(nobody.status).toBe(403);
    expect(nobody.body).toMatch(/cannot create resource ..virtualmachineimages\/upload../);
    // An unknown image is a 403 too: no access, no knowledge of what exists.
    expect((await postRaw(people.nobody, 'no-such-image', data)).status).toBe(403);
    expect((await getImage('rbac')).status?.upload).toBeUndefined();
  });

  it('refuses an image that takes no upload (409, naming spec.source.upload) and an unknown one (404)', async () => {
    await createImage('by-url', { url: 'http://127.0.0.1:9/disk.qcow2', sha256: 'a'.repeat(64) });
    const data = file('small.raw', randomBytes(64 * 1024));
    const byUrl = await upload(people.edit, 'by-url', data, { wait: false });
    expect(byUrl.output).toMatch(/HTTP 409.*takes its content from spec.source.url.*spec.source.upload: \{\}/);
    // The CLI looks the image up first; the subresource itself answers 404 too.
    const missing = await postRaw(people.edit, 'no-such-image', data);
    expect(missing.status).toBe(404);
    expect((JSON.parse(missing.body) as { message: string }).message).toMatch(/"no-such-image" not found/);
  });

  it('refuses a file over --max-upload-bytes with 413 before taking its bytes', async () => {
    await createImage('too-big', { upload: {} });
    const big = file('big.raw', Buffer.alloc(LIMIT + 1, 1));
    const result = await postRaw(people.edit, 'too-big', big);
    expect(result.status).toBe(413);
    expect(result.body).toMatch(new RegExp(`${LIMIT + 1} bytes, more than the ${LIMIT}.*--max-upload-bytes`));
    expect((await getImage('too-big')).status?.upload).toBeUndefined();
  });

  it('refuses a gzip file (415) and a qcow2 cut short (400), and keeps nothing', async () => {
    await createImage('bad-content', { upload: {} });
    const gz = file('disk.raw.gz', gzipSync(randomBytes(256 * 1024)));
    const gzipped = await upload(people.edit, 'bad-content', gz);
    expect(gzipped.output).toMatch(/HTTP 415.*gzip-compressed.*gunzip/);
    let status = (await getImage('bad-content')).status?.upload;
    expect(status).toMatchObject({ state: 'Failed', reason: 'UnsupportedFormat' });

    const whole = qcow2('cut', 2);
    const size = readFileSync(whole).length;
    truncateSync(whole, size - 64 * 1024);
    const cut = await upload(people.edit, 'bad-content', whole);
    expect(cut.output).toMatch(/HTTP 400.*cut short.*data ends at byte \d+, but the file has \d+ bytes/);
    status = (await getImage('bad-content')).status?.upload;
    expect(status).toMatchObject({ state: 'Failed', reason: 'UploadIncomplete' });
    expect(status?.hosts).toBeUndefined();
  });

  it('refuses bytes whose sha256 is not the one sent, naming both', async () => {
    await createImage('wrong-sum', { upload: {} });
    const data = randomBytes(128 * 1024);
    const wrong = 'f'.repeat(64);
    const result = await postRaw(people.edit, 'wrong-sum', file('sum.raw', data), { sha256: wrong });
    expect(result.status).toBe(400);
    expect(result.body).toContain(`have sha256 ${sha(data)}, not ${wrong}`);
    expect((await getImage('wrong-sum')).status?.upload).toMatchObject({ state: 'Failed', reason: 'ChecksumMismatch' });
  });

  it('keeps nothing of a body cut midway, and takes the retry up to the host', async () => {
    await createImage('retry', { upload: {} });
    const image = qcow2('retry', 1);
    const data = readFileSync(image);
    const cut = await postRaw(people.edit, 'retry', image, { cutAfter: Math.floor(data.length / 2) });
    expect(cut.status).toBe(0); // the connection was dropped: no answer
    const failed = await waitFor('retry', (upload) => upload?.state === 'Failed');
    expect(failed).toMatchObject({ reason: 'UploadIncomplete' });
    expect(failed?.message).toMatch(new RegExp(`cut after \\d+ of ${data.length} bytes: nothing was kept`));

    // The retry: checked whole (202), then written to the host, which (the test driver) has no
    // upload stream: Failed with the host's words, and no host listed as holding it.
    const retry = await upload(people.edit, 'retry', image);
    expect(retry.ok).toBe(false);
    expect(retry.output).toMatch(/uploading retry: 100%/);
    expect(retry.output).toMatch(/received \d+ bytes \(qcow2, sha256 [0-9a-f]{64}\); writing them to the hosts/);
    expect(retry.output).toMatch(/upload failed: host u1: .*not supported/);
    const status = (await getImage('retry')).status?.upload;
    expect(status).toMatchObject({
      state: 'Failed',
      reason: 'UploadFailed',
      format: 'qcow2',
      sizeBytes: 1 * MiB,
      sha256: sha(data),
      checksumVerified: true,
    });
    expect(status?.hosts).toBeUndefined();
  });
});

async function waitFor(name: string, check: (upload: NonNullable<ImageObject['status']>['upload']) => boolean) {
  for (const deadline = Date.now() + 30_000; ;) {
    const upload = (await getImage(name)).status?.upload;
    if (check(upload)) return upload;
    if (Date.now() > deadline) throw new Error(`${name}: status.upload not as expected: ${JSON.stringify(upload)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A POST of `path` to the upload subresource through kube-apiserver as `user`, without the CLI's
 * checks: the answer, or status 0 when the connection was dropped (`cutAfter`: send only that many
 * bytes of the promised Content-Length, then drop it).
 */
async function postRaw(
  user: TestUser,
  name: string,
  path: string,
  options: { sha256?: string; cutAfter?: number } = {},
): Promise<{ status: number; body: string }> {
  const data = readFileSync(path);
  const url = uploadUrl(user.kubeConfig.getCurrentCluster()!.server, NS, name, options.sha256 ?? sha(data));
  const https: Record<string, unknown> = {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
  };
  await user.kubeConfig.applyToHTTPSOptions(https);
  return new Promise((resolve) => {
    const req = request(url, https, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    if (options.cutAfter !== undefined) {
      req.write(data.subarray(0, options.cutAfter), () => req.destroy());
    } else {
      req.end(data);
    }
  });
}
