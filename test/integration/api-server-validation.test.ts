// The generated CRDs on a real kube-apiserver (started by test/harness/global-setup.ts, which also
// installs crds/): the server refuses what `virtfleet validate` refuses, at the same field path;
// it accepts and defaults the examples exactly as the validator does; kubectl shows the printer
// columns and explain texts; client-node can create, watch, update and delete; the status
// subresource separates spec from status.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { validateObject, withDefaults } from '../../src/api/validate.js';
import { kubeConfig, kubectl } from '../harness/kube.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const invalidDir = join(root, 'test', 'fixtures', 'invalid');
const manifestsDir = join(root, 'manifests');

const GROUP = 'virtfleet.io';
const VERSION = 'v1alpha1';

const unique = () => randomBytes(3).toString('hex');

async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${unique()}`;
  const result = await kubectl(['create', 'namespace', name]);
  if (result.code !== 0) throw new Error(`kubectl create namespace ${name}: ${result.stderr}`);
  return name;
}

async function deleteNamespace(name: string): Promise<void> {
  await kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
}

/** Retries `check` until it passes: discovery and the published OpenAPI lag behind a new CRD. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const fixtures = readdirSync(invalidDir)
  .filter((name) => name.endsWith('.yaml'))
  .map((name) => ({
    name,
    expected: /^# expect: (\S+)/.exec(readFileSync(join(invalidDir, name), 'utf8'))?.[1] ?? '<missing # expect:>',
  }));

describe('the API server refuses each invalid fixture at the field the validator names', () => {
  let namespace = '';
  beforeAll(async () => {
    namespace = await createNamespace('vf-invalid');
  });
  afterAll(async () => {
    await deleteNamespace(namespace);
  });

  it.each(fixtures)('$name → $expected', async ({ name, expected }) => {
    const file = join(invalidDir, name);
    const result = await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', file]);
    if (result.code === 0) await kubectl(['delete', '-n', namespace, '-f', file, '--ignore-not-found']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(expected);
  });
});

// The rules issue 11 added, at their edges: for each value the real API server (a dry-run create
// with strict field validation, as kubectl sends it) and the validator give the same verdict, and a
// refusal names the same field. Fixtures show that bad values are refused; these also show that
// the values next to them are not.
describe('the API server and the validator agree at the edges of the metadata, disk size, host path and SSH key rules', () => {
  let namespace = '';
  beforeAll(async () => {
    namespace = await createNamespace('vf-edges');
  });
  afterAll(async () => {
    await deleteNamespace(namespace);
  });

  const vm = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'VirtualMachine',
    metadata: { name: `edge-${unique()}`, ...metadata },
    spec: { hostPoolRef: { name: 'lab' }, memory: '1Gi', ...spec },
  });
  const disk = (size: string) => vm({ disks: [{ name: 'd', size, source: { blank: {} } }] });
  const kernel = (path: string) => vm({ kernelBoot: { kernel: path, initrd: '/boot/initrd.img' } });
  const cmdline = (line: string) =>
    vm({ kernelBoot: { kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', cmdline: line } });
  const annotations = (bytes: number) => vm({}, { annotations: { note: 'x'.repeat(bytes - 'note'.length) } });
  const profile = (comment: string) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'InstallProfile',
    metadata: { name: `edge-${unique()}` },
    spec: {
      os: { name: 'Rocky', version: '9.4' },
      installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
      rootPassword: { secretKeyRef: { name: 'root', key: 'hash' } },
      rootSSHAuthorizedKeys: [`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholder ${comment}`],
    },
  });

  const cases: { what: string; object: Record<string, unknown>; accepted: boolean }[] = [
    { what: 'disk size 1Pi', object: disk('1Pi'), accepted: true },
    { what: 'disk size 1Pi + 1 byte', object: disk('1125899906842625'), accepted: false },
    { what: 'disk size 1024Ti', object: disk('1024Ti'), accepted: true },
    { what: 'disk size 1e9', object: disk('1e9'), accepted: true },
    { what: 'disk size 99e99', object: disk('99e99'), accepted: false },
    { what: 'disk size 8Ei', object: disk('8Ei'), accepted: false },
    { what: 'disk size 9Ei (capped at 2^63-1 by the API server)', object: disk('9Ei'), accepted: false },
    { what: 'disk size 1048576.5', object: disk('1048576.5'), accepted: false },
    { what: 'disk size 1.5Gi', object: disk('1.5Gi'), accepted: false },
    { what: 'disk size 1048576000m', object: disk('1048576000m'), accepted: false },
    { what: 'kernel /boot/.hidden/vmlinuz', object: kernel('/boot/.hidden/vmlinuz'), accepted: true },
    { what: 'kernel /boot/..vmlinuz', object: kernel('/boot/..vmlinuz'), accepted: true },
    { what: 'kernel /boot/../vmlinuz', object: kernel('/boot/../vmlinuz'), accepted: false },
    { what: 'kernel /boot/./vmlinuz', object: kernel('/boot/./vmlinuz'), accepted: false },
    { what: 'kernel /boot/..', object: kernel('/boot/..'), accepted: false },
    { what: 'annotations of 262144 bytes', object: annotations(262144), accepted: true },
    { what: 'annotations of 262145 bytes', object: annotations(262145), accepted: false },
    {
      what: 'annotation key with upper case',
      object: vm({}, { annotations: { 'Example.COM/Owner': 'x' } }),
      accepted: true,
    },
    {
      what: 'label key with an upper-case prefix',
      object: vm({}, { labels: { 'Example.com/owner': 'x' } }),
      accepted: false,
    },
    { what: 'label value of 63 characters', object: vm({}, { labels: { tier: 'v'.repeat(63) } }), accepted: true },
    { what: 'label value of 64 characters', object: vm({}, { labels: { tier: 'v'.repeat(64) } }), accepted: false },
    { what: 'label value with a slash', object: vm({}, { labels: { image: 'rocky/9' } }), accepted: false },
    { what: 'unknown metadata field', object: vm({}, { label: { tier: 'web' } }), accepted: false },
    {
      what: 'kernel command line with U+0085 (NEL)',
      object: cmdline('console=ttyS0\u0085init=/bin/sh'),
      accepted: false,
    },
    { what: 'kernel command line with U+2028', object: cmdline('console=ttyS0\u2028init=/bin/sh'), accepted: false },
    { what: 'kernel command line with é and NBSP', object: cmdline('console=ttyS0 note=é\u00a0x'), accepted: true },
    { what: 'SSH key comment José ✓ (NBSP)', object: profile('José ✓\u00a0laptop'), accepted: true },
    { what: 'SSH key comment with U+2028', object: profile('a@b\u2028%end'), accepted: false },
    { what: 'SSH key comment with U+2029', object: profile('a@b\u2029%end'), accepted: false },
    { what: 'SSH key comment with U+0085', object: profile('a@b\u0085%end'), accepted: false },
    { what: 'SSH key comment with U+009B', object: profile('a@b\u009b'), accepted: false },
  ];

  it.each(cases)('$what → accepted: $accepted', async ({ object, accepted }) => {
    const problems = validateObject(object);
    const plural = object.kind === 'InstallProfile' ? 'installprofiles' : 'virtualmachines';
    let refusal: string | undefined;
    try {
      await kubeConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural,
        body: object,
        dryRun: 'All',
        fieldValidation: 'Strict',
      });
    } catch (error) {
      // 422 Invalid, or 400 BadRequest for a strict-decoding error; anything else is not a verdict.
      if (!(error instanceof ApiException) || ![400, 422].includes(error.code)) throw error;
      refusal = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
    }
    expect({ server: refusal === undefined, validator: problems.length === 0 }).toEqual({
      server: accepted,
      validator: accepted,
    });
    if (refusal !== undefined) {
      expect(problems).toHaveLength(1);
      expect(refusal).toContain(problems[0]?.path);
    }
  });
});

describe('the example manifests on a real API server', () => {
  let namespace = '';
  let applied = '';
  const suffix = unique();
  // HostPools are cluster-scoped: give this run's pools their own names, and point the VMs at them.
  const poolName = (name: string) => `${name}-${suffix}`;

  function examples(): Record<string, unknown>[] {
    const objects = readdirSync(manifestsDir)
      .filter((name) => /\.ya?ml$/.test(name))
      .flatMap((name) =>
        parseAllDocuments(readFileSync(join(manifestsDir, name), 'utf8')).map(
          (doc) => doc.toJS() as Record<string, unknown>,
        ),
      )
      .filter((object) => object !== null);
    for (const object of objects) {
      const metadata = object.metadata as { name: string };
      const spec = object.spec as { hostPoolRef?: { name: string } } | undefined;
      if (object.kind === 'HostPool') metadata.name = poolName(metadata.name);
      if (object.kind === 'VirtualMachine' && spec?.hostPoolRef)
        spec.hostPoolRef.name = poolName(spec.hostPoolRef.name);
    }
    // Secrets first, so nothing is ever applied before what it refers to.
    return objects.sort((a, b) => Number(b.kind === 'Secret') - Number(a.kind === 'Secret'));
  }

  beforeAll(async () => {
    namespace = await createNamespace('vf-examples');
    applied = examples()
      .map((object) => stringify(object))
      .join('---\n');
  });
  afterAll(async () => {
    await kubectl(['delete', '-n', namespace, '-f', '-', '--ignore-not-found', '--wait=false'], { input: applied });
    await deleteNamespace(namespace);
  });

  it('applies cleanly', async () => {
    const result = await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], { input: applied });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('is defaulted by the API server exactly as the validator defaults it', async () => {
    for (const object of examples().filter((o) => o.apiVersion === `${GROUP}/${VERSION}`)) {
      const { kind, metadata } = object as { kind: string; metadata: { name: string } };
      const scope = kind === 'HostPool' ? [] : ['-n', namespace];
      const result = await kubectl(['get', kind.toLowerCase(), metadata.name, ...scope, '-o', 'json']);
      expect(result.code).toBe(0);
      const stored = JSON.parse(result.stdout) as { spec: unknown };
      expect({ kind, name: metadata.name, spec: stored.spec }).toEqual({
        kind,
        name: metadata.name,
        spec: (withDefaults(object) as { spec: unknown }).spec,
      });
    }
  });

  it('kubectl get shows the printer columns, by short name and by category', async () => {
    const byShortName = await eventually(async () => {
      const result = await kubectl(['get', 'vm,hp,iprof', '-n', namespace]);
      if (result.code !== 0) throw new Error(result.stderr);
      return result.stdout;
    });
    expect(byShortName).toMatch(/NAME\s+PHASE\s+HOST\s+HYPERVISOR\s+IP\s+READY\s+AGE/);
    expect(byShortName).toMatch(/NAME\s+READY\s+HOSTS-READY\s+HOSTS\s+STRATEGY\s+AGE/);
    expect(byShortName).toMatch(/NAME\s+VALID\s+OS\s+BOOT\s+AGE/);
    expect(byShortName).toContain(`hostpool.virtfleet.io/${poolName('lab')}`);
    expect(byShortName).toMatch(/installprofile\.virtfleet\.io\/rocky-9\s+Rocky\s+pxe/);

    const byCategory = await kubectl(['get', 'virtfleet', '-n', namespace]);
    expect(byCategory.code).toBe(0);
    expect(byCategory.stdout).toContain('virtualmachine.virtfleet.io/rocky-1');
    expect(byCategory.stdout).toContain('installprofile.virtfleet.io/rocky-9');
  });
});

describe('kubectl explain', () => {
  it('shows the field descriptions of VirtualMachine.spec', async () => {
    const text = await eventually(async () => {
      const result = await kubectl(['explain', 'virtualmachine.spec']);
      if (result.code !== 0 || !result.stdout.includes('hostPoolRef')) throw new Error(result.stderr || result.stdout);
      return result.stdout;
    });
    expect(text).toContain('The desired state of the VM.');
    expect(text).toContain('The HostPool whose hosts may run the VM.');
    expect(text).toMatch(/runStrategy\s+<string>/);
    const memory = await kubectl(['explain', 'virtualmachine.spec.memory']);
    expect(memory.stdout).toContain('Guest memory as a Kubernetes quantity');
  });
});

describe('VirtualMachine through client-node', () => {
  let namespace = '';
  beforeAll(async () => {
    namespace = await createNamespace('vf-client');
  });
  afterAll(async () => {
    await deleteNamespace(namespace);
  });

  const api = () => kubeConfig().makeApiClient(CustomObjectsApi);
  const target = (name: string) => ({ group: GROUP, version: VERSION, namespace, plural: 'virtualmachines', name });
  const newVm = (name: string) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'VirtualMachine',
    metadata: { name },
    spec: { hostPoolRef: { name: 'lab' }, memory: '1Gi' },
  });

  it('creates, watches, updates and deletes: ADDED, MODIFIED, DELETED', async () => {
    const name = `round-trip-${unique()}`;
    const seen: { type: string; memory: string }[] = [];
    const watching = await new Watch(kubeConfig()).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/virtualmachines`,
      {},
      (type, object: { metadata: { name: string }; spec: { memory: string } }) => {
        if (object.metadata.name === name) seen.push({ type, memory: object.spec.memory });
      },
      () => undefined,
    );
    try {
      const created = (await api().createNamespacedCustomObject({ ...target(name), body: newVm(name) })) as {
        spec: { memory: string; runStrategy: string };
      };
      expect(created.spec.runStrategy).toBe('Always'); // defaulted on the server
      await eventually(async () => expect(seen.map((e) => e.type)).toContain('ADDED'), 10000);

      const current = (await api().getNamespacedCustomObject(target(name))) as { spec: { memory: string } };
      current.spec.memory = '2Gi';
      await api().replaceNamespacedCustomObject({ ...target(name), body: current });
      await eventually(async () => expect(seen).toContainEqual({ type: 'MODIFIED', memory: '2Gi' }), 10000);

      await api().deleteNamespacedCustomObject(target(name));
      await eventually(async () => expect(seen.map((e) => e.type)).toContain('DELETED'), 10000);
      const types = seen.map((e) => e.type);
      expect(types[0]).toBe('ADDED');
      expect(types[types.length - 1]).toBe('DELETED');
    } finally {
      watching.abort();
    }
  });

  it('keeps spec and status apart: /status writes only status, the main resource only spec', async () => {
    const name = `status-${unique()}`;
    type Vm = {
      metadata: { generation: number };
      spec: { memory: string };
      status?: { phase?: string; host?: string };
    };
    const created = (await api().createNamespacedCustomObject({ ...target(name), body: newVm(name) })) as Vm;
    expect(created.status).toBeUndefined();

    // A status write that also tries to change spec: status changes, spec does not, generation stays.
    const forStatus = (await api().getNamespacedCustomObject(target(name))) as Vm;
    forStatus.status = { phase: 'Running', host: 'lab-1' };
    forStatus.spec.memory = '8Gi';
    const afterStatus = (await api().replaceNamespacedCustomObjectStatus({ ...target(name), body: forStatus })) as Vm;
    expect(afterStatus.status).toEqual({ phase: 'Running', host: 'lab-1' });
    expect(afterStatus.spec.memory).toBe('1Gi');
    expect(afterStatus.metadata.generation).toBe(created.metadata.generation);

    // A main-resource write that also tries to change status: spec changes, status does not.
    const forSpec = (await api().getNamespacedCustomObject(target(name))) as Vm;
    forSpec.spec.memory = '2Gi';
    forSpec.status = { phase: 'Failed' };
    const afterSpec = (await api().replaceNamespacedCustomObject({ ...target(name), body: forSpec })) as Vm;
    expect(afterSpec.spec.memory).toBe('2Gi');
    expect(afterSpec.status).toEqual({ phase: 'Running', host: 'lab-1' });
    expect(afterSpec.metadata.generation).toBe(created.metadata.generation + 1);

    await api().deleteNamespacedCustomObject(target(name));
  });

  it('refuses an invalid status too (the status schema is enforced on /status)', async () => {
    const name = `bad-status-${unique()}`;
    await api().createNamespacedCustomObject({ ...target(name), body: newVm(name) });
    const current = (await api().getNamespacedCustomObject(target(name))) as { status?: unknown };
    current.status = { phase: 'Exploded' };
    await expect(api().replaceNamespacedCustomObjectStatus({ ...target(name), body: current })).rejects.toThrow(
      /status\.phase/,
    );
    await api().deleteNamespacedCustomObject(target(name));
  });
});
