// spec.install on the real API server with a simulated host: a VM whose InstallProfile is Valid
// is defined to boot the installer's kernel directly with inst.ks=<its own URL> and goes
// Installing; the test plays the installer — it fetches that URL over 127.0.0.1 (the Kickstart,
// and an Event on the VM) and powers the domain off through the hypervisor — and the controller
// redefines the domain to boot from its disk and runs it, Installed=True, the URL now 404. A
// second VM from the same profile gets a token of its own, and its install survives a restart
// of the controller (the token is read back from the domain on the host). The installer's
// kernel and initrd are volumes of the host's storage pool: put there by hand here (the test
// driver takes no uploads), downloaded by the controller on a real host — which is tried for a
// third profile, up to the upload the test driver refuses. The root password, plaintext in its
// Secret, and the tokens appear in no log line, Event or status.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { installerVolumeName, validatorOf } from '../../../src/controllers/install/media.js';
import { ControllerBench, condition, isRunning } from './fixtures.js';
import {
  INSTALL_HOST as HOST,
  InstallBench,
  ROOT_PASSWORD,
  STORAGE_POOL,
  eventually,
  fetchText,
  freePort,
  kickstartUrl,
} from './install-fixtures.js';

let bench: ControllerBench;
let setup: InstallBench;

beforeAll(async () => {
  // A fixed port: the URL in a domain's command line must still work after a controller restart.
  setup = new InstallBench();
  bench = new ControllerBench('vm-install', {
    installEndpoint: { address: `127.0.0.1:${await freePort()}` },
    hostRetryMs: 1_000,
  });
  await setup.start(bench);
});

afterAll(async () => {
  await setup.close();
});

const installingVm = (name: string, profile = 'rocky') => setup.createVm(name, profile);
const osBoot = (uid: string) => setup.osBoot(uid);
const createProfile = (name: string, extra: Record<string, unknown>) => setup.createProfile(name, extra);

const installing = (vm: Parameters<typeof isRunning>[0]) =>
  vm.status?.phase === 'Installing' && condition(vm, 'Installed')?.reason === 'Installing';

const urls = new Map<string, string>();

describe('VirtualMachine install', () => {
  it('boots a VM with an InstallProfile into the installer, with inst.ks=<its own URL>', async () => {
    const created = await installingVm('web-1');
    const uid = created.metadata.uid ?? '';
    const vm = await bench.untilVm('web-1', installing, 'Installing');
    expect(condition(vm, 'Installed')).toMatchObject({ status: 'False', reason: 'Installing' });
    expect(condition(vm, 'Installed')?.message).toContain(`/ks/${uid}/…`);
    expect(condition(vm, 'Ready')).toMatchObject({ status: 'False', reason: 'Installing' });
    expect(condition(vm, 'Provisioned')).toMatchObject({ status: 'True' });

    const boot = await osBoot(uid);
    expect(boot.kernel).toBe(setup.kernelPath);
    expect(boot.initrd).toBe(setup.initrdPath);
    // (libvirt shows its default <boot dev='hd'/>; QEMU boots the kernel given.)
    const url = kickstartUrl(boot.cmdline);
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/ks/${uid}/[A-Za-z0-9_-]{43}$`));
    expect(boot.cmdline).toBe(`inst.ks=${url} inst.repo=${setup.treeUrl} inst.text console=ttyS0`);
    expect(condition(vm, 'Installed')?.message).not.toContain(url.split('/').at(-1));
    expect((await bench.domains(HOST)).find((d) => d.uuid === uid)?.state).toBe('running');
    urls.set('web-1', url);
  });

  it('serves the VM its Kickstart at that URL and records the fetch as an Event', async () => {
    const { status, body } = await fetchText(urls.get('web-1')!);
    expect(status).toBe(200);
    expect(body).toContain(`# Kickstart of InstallProfile ${bench.namespace}/rocky`);
    expect(body).toMatch(/^rootpw --iscrypted \$6\$/m);
    expect(body).toMatch(/^poweroff$/m);
    const served = await eventually(
      async () => (await bench.events('web-1')).find((e) => e.reason === 'KickstartServed'),
      'a KickstartServed Event',
    );
    expect(served.type).toBe('Normal');
    expect(served.message).toMatch(
      new RegExp(
        `^Kickstart of InstallProfile ${bench.namespace}/rocky \\(sha256:[0-9a-f]{64}\\) served to (::ffff:)?127\\.0\\.0\\.1$`,
      ),
    );
  });

  it("answers a wrong token, another VM's UID and anything else with 404", async () => {
    const url = urls.get('web-1')!;
    const token = url.split('/').at(-1)!;
    const wrong = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [
      url.replace(token, wrong),
      url.replace(/\/ks\/[^/]+\//, '/ks/11111111-1111-4111-8111-111111111111/'),
      `${url}/`,
      `${url}?x`,
      url.replace(/\/ks\/.*$/, '/ks/'),
    ]) {
      expect(await fetchText(bad)).toEqual({ status: 404, body: 'not found\n' });
    }
  });

  it('gives a second VM from the same profile a token of its own', async () => {
    const created = await installingVm('web-2');
    await bench.untilVm('web-2', installing, 'Installing');
    const url = kickstartUrl((await osBoot(created.metadata.uid ?? '')).cmdline);
    urls.set('web-2', url);
    const first = urls.get('web-1')!;
    expect(url.split('/').at(-1)).not.toBe(first.split('/').at(-1));
    expect((await fetchText(url)).status).toBe(200);
    // One VM's token does not open the other's file.
    expect((await fetchText(`${first.replace(/[^/]+$/, '')}${url.split('/').at(-1)}`)).status).toBe(404);
  });

  it('boots from the disk once the installer powers the VM off: Running, Installed=True, the URL gone', async () => {
    const uid = bench.vm('web-1')!.metadata.uid ?? '';
    await bench.hypervisor(HOST).shutdown(uid); // the Kickstart's poweroff
    const vm = await bench.untilVm(
      'web-1',
      (v) => isRunning(v) && condition(v, 'Installed')?.status === 'True',
      'Running and Installed',
    );
    expect(condition(vm, 'Installed')).toMatchObject({
      reason: 'Installed',
      message: expect.stringContaining(`InstallProfile ${bench.namespace}/rocky installed`),
    });
    const boot = await osBoot(uid);
    expect(boot).toEqual({ kernel: undefined, initrd: undefined, cmdline: undefined, bootDev: 'hd' });
    expect((await bench.domains(HOST)).find((d) => d.uuid === uid)?.state).toBe('running');
    expect(await fetchText(urls.get('web-1')!)).toEqual({ status: 404, body: 'not found\n' });
    const reasons = (
      await eventually(async () => {
        const events = await bench.events('web-1');
        return events.some((e) => e.reason === 'Installed') ? events : undefined;
      }, 'an Installed Event')
    ).map((e) => e.reason);
    for (const reason of ['InstallStarted', 'KickstartServed', 'Installed', 'Started'])
      expect(reasons).toContain(reason);
  });

  it('keeps an install going across a controller restart, token included, and stays installed after one', async () => {
    const started = condition(bench.vm('web-2'), 'Installed')?.lastTransitionTime;
    await bench.stopController();
    expect((await fetchText(urls.get('web-2')!)).status).toBe(0); // nobody listens
    await bench.startController();
    // The new controller takes the token back from the domain's command line.
    await eventually(
      async () => ((await fetchText(urls.get('web-2')!)).status === 200 ? true : undefined),
      'the Kickstart of web-2 after the restart',
    );
    const uid = bench.vm('web-2')!.metadata.uid ?? '';
    expect(kickstartUrl((await osBoot(uid)).cmdline)).toBe(urls.get('web-2'));
    const vm = await bench.untilVm('web-2', installing, 'Installing');
    // The install goes on: it did not start again (the timeout counts from the first start).
    expect(condition(vm, 'Installed')?.lastTransitionTime).toBe(started);

    await bench.hypervisor(HOST).shutdown(uid);
    await bench.untilVm(
      'web-2',
      (v) => isRunning(v) && condition(v, 'Installed')?.status === 'True',
      'Running and Installed',
    );
    expect((await osBoot(uid)).bootDev).toBe('hd');
    // web-1, installed before the restart, still boots from its disk.
    expect((await osBoot(bench.vm('web-1')!.metadata.uid ?? '')).bootDev).toBe('hd');
    expect(isRunning(bench.vm('web-1')!)).toBe(true);
  });

  it('waits, naming the problem, while the profile is missing or not Valid', async () => {
    await installingVm('orphan', 'nope');
    const missing = await bench.untilVm(
      'orphan',
      (v) => condition(v, 'Installed')?.reason === 'ProfileNotFound',
      'ProfileNotFound',
    );
    expect(condition(missing, 'Installed')?.message).toBe(
      `InstallProfile ${bench.namespace}/nope does not exist: create it, or fix spec.install.profileRef.name`,
    );
    expect(missing.status?.phase).toBe('Provisioning');
    expect(missing.status?.domainUUID).toBeUndefined(); // nothing defined that could boot an empty disk

    await createProfile('nope', {
      rootPassword: { secretKeyRef: { name: 'missing-passwords', key: 'root-password' } },
    });
    const invalid = await bench.untilVm(
      'orphan',
      (v) => condition(v, 'Installed')?.message.includes('(SecretNotFound)') === true,
      'ProfileNotValid (SecretNotFound)',
    );
    expect(condition(invalid, 'Installed')?.reason).toBe('ProfileNotValid');
    expect(condition(invalid, 'Installed')?.message).toContain(
      `InstallProfile ${bench.namespace}/nope is not valid (SecretNotFound): spec.rootPassword.secretKeyRef: Secret ${bench.namespace}/missing-passwords does not exist`,
    );
  });

  it('downloads the installer of a profile whose files are not on the host, and says why it cannot go on', async () => {
    const base = setup.treeUrl.replace(/\/tree$/, '');
    await createProfile('other', {
      boot: { method: 'kernel', kernelUrl: `${base}/other/vmlinuz`, initrdUrl: `${base}/other/initrd.img` },
    });
    await installingVm('fetching', 'other');
    const vm = await bench.untilVm(
      'fetching',
      (v) => condition(v, 'Installed')?.reason === 'InstallMediaFailed',
      'InstallMediaFailed',
    );
    // The test driver takes no uploads: as far as the installer's files get here.
    expect(condition(vm, 'Installed')?.message).toMatch(
      new RegExp(`^installer vmlinuz ${base}/other/vmlinuz: upload to storage pool ${STORAGE_POOL}: `),
    );
    const name = installerVolumeName(
      `${base}/other/vmlinuz`,
      validatorOf(new Headers({ etag: '"kernel-2"' })),
      'vmlinuz',
    );
    const volumes = await Promise.all(
      [name, `${name}.part`].map((volume) => bench.hypervisor(HOST).volume(STORAGE_POOL, volume)),
    );
    expect(volumes).toEqual([undefined, undefined]); // nothing half-made is left
  });

  it('shows the root password and the tokens nowhere: logs, Events, status', async () => {
    const events = await bench.kube.list(
      { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
      { namespace: bench.namespace },
    );
    const haystacks = {
      logs: JSON.stringify(bench.logs.lines()),
      events: JSON.stringify(events.items),
      status: JSON.stringify(bench.vms.list().map((vm) => vm.status)),
    };
    expect(haystacks.events).toContain('KickstartServed');
    const tokens = [...urls.values()].map((url) => url.split('/').at(-1)!);
    for (const secret of [
      ROOT_PASSWORD,
      Buffer.from(ROOT_PASSWORD).toString('base64'),
      JSON.stringify(ROOT_PASSWORD).slice(1, -1),
      ...tokens,
    ]) {
      for (const [where, text] of Object.entries(haystacks))
        expect({ where, found: text.includes(secret) }).toEqual({ where, found: false });
    }
  });
});
