// InstallProfiles on the real API server, with the controllers running in-process: a profile
// and its Secret become Valid=True with the sha256 of the Kickstart file; a profile that cannot
// be rendered (also one the API server's own rules let through) becomes Valid=False naming the
// field; a missing Secret is waited for; a rotated one changes the hash; a steady profile
// writes nothing; `virtfleet ks render` prints the file the controller hashed. And the root
// password, stored in plaintext in its Secret, appears in no log line, Event, status or
// rendered file.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runRender, type RenderOutput } from '../../../src/cli/ks.js';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { INSTALL_PROFILE, type ProfileObject } from '../../../src/controllers/installprofile.js';
import { kickstartHash } from '../../../src/provisioning/kickstart.js';
import { Cache } from '../../../src/runtime/cache.js';
import type { Condition } from '../../../src/runtime/conditions.js';
import type { Informer } from '../../../src/runtime/informer.js';
import { ApiError, type KubeObject } from '../../../src/runtime/kube-client.js';
import { kubeconfigPath } from '../../harness/kube.js';
import { Signal } from '../runtime/fixtures.js';
import { ControllerBench } from './fixtures.js';

const ROOT_PASSWORD = 'Plain "root" pa$$word #1';
const ADMIN_HASH = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';
const RESYNC_MS = 400;

const bench = new ControllerBench('iprof', {
  installProfileResyncMs: RESYNC_MS,
  installProfileSecretRetryMs: RESYNC_MS,
});
const changed = new Signal();
const stop = new AbortController();
let watching: Promise<void>;
let profiles: Informer<ProfileObject>;

beforeAll(async () => {
  await bench.start();
  const cache = new Cache(bench.kube, bench.logs.logger);
  profiles = cache.informerFor<ProfileObject>(INSTALL_PROFILE, { namespace: bench.namespace });
  profiles.on(() => changed.poke());
  watching = cache.run(stop.signal);
  await cache.waitForSync();
});

afterAll(async () => {
  stop.abort();
  await watching;
  await bench.close();
});

function spec(secret: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    os: { family: 'rhel', name: 'Rocky', version: '9.4' },
    installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
    timezone: 'Europe/Berlin',
    rootPassword: { secretKeyRef: { name: secret, key: 'root-password' } },
    users: [{ name: 'admin', groups: ['wheel'], passwordSecretRef: { name: secret, key: 'admin-hash' } }],
    packages: ['@^minimal-environment', 'qemu-guest-agent'],
    post: { script: 'systemctl enable qemu-guest-agent\n' },
    ...extra,
  };
}

async function createSecret(name: string, rootPassword = ROOT_PASSWORD): Promise<void> {
  await bench.kube.create(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: bench.namespace },
    type: 'Opaque',
    stringData: { 'root-password': rootPassword, 'admin-hash': ADMIN_HASH },
  } as never);
}

async function createProfile(name: string, body: Record<string, unknown>): Promise<void> {
  await bench.kube.create(INSTALL_PROFILE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'InstallProfile',
    metadata: { name, namespace: bench.namespace },
    spec: body,
  } as never);
}

function valid(profile: ProfileObject | undefined): Condition | undefined {
  return (profile?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Valid');
}

async function untilProfile(
  name: string,
  check: (profile: ProfileObject) => boolean,
  what: string,
  ms = 30_000,
): Promise<ProfileObject> {
  const get = () => profiles.get(`${bench.namespace}/${name}`);
  await changed.until(
    () => {
      const profile = get();
      return profile !== undefined && check(profile);
    },
    ms,
    `${name}: ${what} (last status: ${JSON.stringify(get()?.status)})`,
  );
  return get()!;
}

const current = (profile: ProfileObject) => valid(profile)?.observedGeneration === profile.metadata.generation;

type EventObject = KubeObject & {
  reason?: string;
  message?: string;
  type?: string;
  involvedObject?: { uid?: string; kind?: string };
};

async function events(): Promise<EventObject[]> {
  const list = await bench.kube.list<EventObject>(
    { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
    { namespace: bench.namespace },
  );
  return list.items;
}

async function profileEvents(name: string): Promise<EventObject[]> {
  const uid = profiles.get(`${bench.namespace}/${name}`)?.metadata.uid;
  return (await events()).filter((event) => event.involvedObject?.uid === uid);
}

/** The profile's Events with `reason`, once `check` holds for them (Events are recorded after the status write). */
async function eventsUntil(
  name: string,
  reason: string,
  check: (events: EventObject[]) => boolean,
  ms = 10_000,
): Promise<EventObject[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await profileEvents(name)).filter((event) => event.reason === reason);
    if (check(found)) return found;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${reason} Events of ${name}: ${JSON.stringify(found.map((e) => e.message))}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function capture(): RenderOutput & { stdout: () => string; stderr: () => string } {
  let stdout = '';
  let stderr = '';
  return {
    write: (t) => (stdout += t),
    out: (l) => (stdout += `${l}\n`),
    err: (l) => (stderr += `${l}\n`),
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

async function renderCli(name: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = capture();
  const code = await runRender(name, { namespace: bench.namespace, kubeconfig: kubeconfigPath() }, output);
  return { code, stdout: output.stdout(), stderr: output.stderr() };
}

describe('InstallProfile controller', () => {
  it('reports a profile and its Secret as Valid with the sha256 of the Kickstart file, and ks render prints that file', async () => {
    await createSecret('rocky-passwords');
    await createProfile('rocky', spec('rocky-passwords'));
    const profile = await untilProfile('rocky', (p) => valid(p)?.status === 'True' && current(p), 'Valid=True');
    expect(valid(profile)).toMatchObject({
      reason: 'Rendered',
      message: expect.stringMatching(/render to a Kickstart file of \d+ lines/),
    });
    expect(profile.status?.renderedHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(profile.status?.observedGeneration).toBe(profile.metadata.generation);

    const cli = await renderCli('rocky');
    expect(cli.code).toBe(0);
    expect(kickstartHash(cli.stdout)).toBe(profile.status?.renderedHash);
    expect(cli.stderr).toContain('(the same as status.renderedHash)');
    expect(cli.stdout).toMatch(/^rootpw --iscrypted \$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/m);
    expect(cli.stdout).toContain(`user --name=admin --groups=wheel --iscrypted --password=${ADMIN_HASH}\n`);

    const rendered = await eventsUntil('rocky', 'Rendered', (found) => found.length > 0);
    expect(rendered).toEqual([
      expect.objectContaining({ type: 'Normal', message: expect.stringContaining(profile.status!.renderedHash!) }),
    ]);
  });

  it('writes nothing while nothing changes, though it reads the Secrets again at every resync', async () => {
    const before = await untilProfile('rocky', (p) => valid(p)?.status === 'True', 'Valid=True');
    const writes = bench.manager!.client.counts.writes;
    const reconciles = await bench.reconciles('installprofile');
    await new Promise((resolve) => setTimeout(resolve, RESYNC_MS * 4));
    expect(await bench.reconciles('installprofile')).toBeGreaterThan(reconciles + 1);
    expect(bench.manager!.client.counts.writes - writes).toBe(0);
    expect(profiles.get(`${bench.namespace}/rocky`)?.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('changes the hash when the Secret changes, at the next resync, with an Event', async () => {
    const before = profiles.get(`${bench.namespace}/rocky`)!.status!.renderedHash;
    await bench.kube.patch(SECRET, bench.namespace, 'rocky-passwords', {
      stringData: { 'root-password': `${ROOT_PASSWORD} v2` },
    });
    const after = await untilProfile(
      'rocky',
      (p) => p.status?.renderedHash !== undefined && p.status.renderedHash !== before,
      'a new renderedHash',
    );
    expect(valid(after)?.status).toBe('True');
    const hash = after.status!.renderedHash!;
    const rendered = await eventsUntil('rocky', 'Rendered', (found) => found.some((e) => e.message?.includes(hash)));
    expect(rendered).toHaveLength(2);
  });

  it('is refused by the API server when %post hides a section line behind a Unicode space or a line break only Kickstart sees', async () => {
    // Anaconda's parser strips any Unicode space before '%' and splits lines at \x1c, \x85, \r…:
    // each of these would end %post early. The CRD's CEL rules refuse them (the renderer would too).
    for (const script of [
      'echo hi\n\u00a0%end\nrootpw --plaintext owned\n',
      'echo hi\x1c%end\n',
      'echo hi\u0085%end\n',
      'echo hi\r\n',
    ]) {
      const refused = await createProfile('sneaky', spec('rocky-passwords', { post: { script } })).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(ApiError);
      expect(refused).toMatchObject({ status: 422, message: expect.stringContaining('spec.post.script') });
    }
  });

  it('renders again for a new generation (observedGeneration follows)', async () => {
    await createProfile('sneaky', spec('rocky-passwords', { post: { script: 'echo hi\n' } }));
    await untilProfile('sneaky', (p) => valid(p)?.status === 'True' && current(p), 'Valid=True');
    await bench.kube.patch(INSTALL_PROFILE, bench.namespace, 'sneaky', { spec: { post: { script: 'echo bye\n' } } });
    const fixed = await untilProfile(
      'sneaky',
      (p) => valid(p)?.status === 'True' && p.status?.observedGeneration === 2 && current(p),
      'Valid=True, generation 2',
    );
    expect(fixed.status?.observedGeneration).toBe(2);
  });

  it('waits for a missing Secret with SecretNotFound, and renders once it exists', async () => {
    await createProfile('later', spec('later-passwords'));
    const waiting = await untilProfile('later', (p) => valid(p)?.reason === 'SecretNotFound', 'SecretNotFound');
    expect(valid(waiting)?.message).toBe(
      `spec.rootPassword.secretKeyRef: Secret ${bench.namespace}/later-passwords does not exist; create it with the key root-password; ` +
        `spec.users[0].passwordSecretRef: Secret ${bench.namespace}/later-passwords does not exist; create it with the key admin-hash`,
    );
    await createSecret('later-passwords');
    await untilProfile('later', (p) => valid(p)?.status === 'True', 'Valid=True once the Secret exists');
  });

  it('reports an unusable Secret value by key, never by value', async () => {
    await bench.kube.create(SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'newline-passwords', namespace: bench.namespace },
      stringData: { 'root-password': `${ROOT_PASSWORD}\n`, 'admin-hash': 'not-a-hash' },
    } as never);
    await createProfile('newline', spec('newline-passwords'));
    const profile = await untilProfile('newline', (p) => valid(p)?.reason === 'InvalidSecret', 'InvalidSecret');
    expect(valid(profile)?.message).toMatch(
      /^spec\.rootPassword\.secretKeyRef: Secret \S+ key root-password ends with a line break.*; spec\.users\[0\]\.passwordSecretRef: Secret \S+ key admin-hash holds no crypt hash/,
    );
  });

  it('never shows the root password: not in logs, Events, status or the rendered file', async () => {
    const rendered = await renderCli('rocky');
    expect(rendered.code).toBe(0);
    const haystacks = {
      logs: JSON.stringify(bench.logs.lines()),
      events: JSON.stringify(await events()),
      status: JSON.stringify(profiles.list().map((p) => p.status)),
      rendered: rendered.stdout + rendered.stderr,
    };
    expect(haystacks.logs).toContain('profile rendered');
    expect(haystacks.events).toContain('Rendered');
    for (const password of [ROOT_PASSWORD, `${ROOT_PASSWORD} v2`]) {
      for (const form of [password, Buffer.from(password).toString('base64'), JSON.stringify(password).slice(1, -1)]) {
        for (const [where, text] of Object.entries(haystacks))
          expect({ where, found: text.includes(form) }).toEqual({ where, found: false });
      }
    }
  });
});
