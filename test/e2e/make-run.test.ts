// Drives `make run` as a user would: it comes up, serves the CRDs, installs the
// simulated hosts of HostPool lab and runs the examples on them (KVM and Xen
// hosts Ready, the small VM Running, the image-URL VM refused as documented),
// starts two real libvirtd hosts as HostPool local only when asked to (or when it can), boots the
// VM demo there (read through its console, migrated to the other host), keeps
// its data across a restart, and Ctrl-C leaves no process behind. It behaves as
// a cluster: kube-controller-manager deletes namespaces and collects owned
// objects, the examples are applied server-side (no drift after a restart), a
// killed controller is restarted, and rocky-1 says what its install waits for.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { crdName } from '../../src/api/crd.js';
import { RESOURCES } from '../../src/api/resources.js';
import { controlPlaneBinaries, repoRoot } from '../../src/devstack/binaries.js';
import { processesUsing } from '../../src/devstack/leftovers.js';
import { Agent, request } from 'undici';
import { PtyProcess } from './pty.js';

const run = promisify(execFile);
// Each test starts the stack, which may first build what make run needs.
const STACK_TIMEOUT_MS = 300_000;
const stateDir = mkdtempSync(join(tmpdir(), 'virtfleet-make-run-'));
const kubectlBin = controlPlaneBinaries().kubectl;

interface RunningStack {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `localLibvirt`: VIRTFLEET_LOCAL_LIBVIRT, so that a libvirtd on the test machine changes nothing. */
function startMakeRun(localLibvirt: '0' | '1'): RunningStack {
  // Its own process group, as a shell gives a foreground job: Ctrl-C is a
  // SIGINT to that whole group.
  const child = spawn('make', ['run'], {
    cwd: repoRoot(),
    env: { ...process.env, VIRTFLEET_STATE_DIR: stateDir, VIRTFLEET_LOCAL_LIBVIRT: localLibvirt },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** exitCode stays null for a process ended by a signal. */
function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForKubeconfigLine(stack: RunningStack): Promise<string> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const match = /kubeconfig: (\S+)/.exec(stack.output());
    if (match?.[1] && stack.output().includes('Press Ctrl-C to stop.')) return match[1];
    if (hasExited(stack.child)) throw new Error(`make run exited early:\n${stack.output()}`);
    if (Date.now() > deadline) throw new Error(`make run did not come up:\n${stack.output()}`);
    await delay(200);
  }
}

async function ctrlC(stack: RunningStack): Promise<void> {
  process.kill(-stack.child.pid!, 'SIGINT');
  await stack.exited;
}

/** Processes of the stack that are still running, given them time to finish exiting. */
async function leftoversAfterStop(): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  let left = processesUsing(stateDir);
  while (left.length > 0 && Date.now() < deadline) {
    await delay(200);
    left = processesUsing(stateDir);
  }
  return left.map((p) => `${p.pid} ${p.command}`);
}

async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run(kubectlBin, ['--kubeconfig', kubeconfig, ...args]);
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = execFile(kubectlBin, ['--kubeconfig', kubeconfig, ...args], (error, stdout, stderr) =>
      error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
    child.stdin?.end(input);
  });
}

/** Polls the stack's output until `pattern` matches it. */
async function untilOutput(stack: RunningStack, pattern: RegExp, what: string, ms = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(stack.output());
    if (match) return match;
    if (hasExited(stack.child)) throw new Error(`make run exited while waiting for ${what}:\n${stack.output()}`);
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}; output:\n${stack.output()}`);
    await delay(200);
  }
}

/** The virtfleet CLI from the sources, as the make run summary tells a user to run it. */
async function runVirtfleet(kubeconfig: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot(),
    env: { ...process.env, KUBECONFIG: kubeconfig },
    timeout: 120_000,
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface Vm {
  metadata?: { annotations?: Record<string, string>; managedFields?: Array<{ manager: string; operation: string }> };
  status?: { phase?: string; host?: string; hypervisor?: string; conditions?: Condition[] };
}

interface Pool {
  status?: {
    readyHosts?: number;
    hosts?: Array<{ name: string; ready: boolean; hypervisor?: string; capacity?: { cpus: number; memory: string } }>;
  };
}

const condition = (vm: Vm, type: string) => vm.status?.conditions?.find((c) => c.type === type);

/** Polls `kubectl get <args> -o json` until `holds`; fails at the deadline with what it last saw. */
async function untilObject<T>(
  kubeconfig: string,
  args: string[],
  holds: (object: T) => boolean,
  what: string,
  ms = 90_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: string;
  for (;;) {
    try {
      const object = JSON.parse(await kubectl(kubeconfig, ['get', ...args, '-o', 'json'])) as T;
      if (holds(object)) return object;
      last = JSON.stringify((object as { status?: unknown }).status);
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}; last seen: ${last}`);
    await delay(250);
  }
}

const LAB_HOSTS = '/var/lib/virtfleet/lab/hosts';
const IMAGE_URL = 'https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img';

let current: RunningStack | undefined;

/**
 * The summary's web console URL and two tokens: each logs in (TokenReview) as its person, and
 * the admin may patch VMs where the view-only person may not (Kubernetes' admin and view roles,
 * aggregated by kube-controller-manager).
 */
async function checkWebConsole(output: string): Promise<void> {
  const web = /web: +(https:\/\/127\.0\.0\.1:\d+)\/ \(the web console; its certificate is signed by (\S+),/.exec(
    output,
  );
  if (!web) throw new Error(`no web: line in the summary:\n${output}`);
  const agent = new Agent({ connect: { ca: readFileSync(web[2]!) } });
  try {
    for (const [role, mayPatch] of [
      ['admin', true],
      ['view', false],
    ] as const) {
      const token = new RegExp(`web ${role}: +(\\S+)\\n +\\(a token of (\\S+) to log in with`).exec(output);
      if (!token) throw new Error(`no web ${role}: token in the summary:\n${output}`);
      const login = await request(`${web[1]}/api/login`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: token[1] }),
      });
      const session = (await login.body.json()) as { user: { name: string } };
      expect([login.statusCode, session.user.name]).toEqual([200, token[2]]);
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      const access = await request(`${web[1]}/api/access?verb=patch&resource=virtualmachines&namespace=default`, {
        dispatcher: agent,
        headers: { cookie },
      });
      expect(await access.body.json()).toEqual({ allowed: mayPatch });
    }
  } finally {
    await agent.close();
  }
}

afterAll(async () => {
  if (current && !hasExited(current.child)) process.kill(-current.child.pid!, 'SIGKILL');
  for (const leftover of processesUsing(stateDir)) process.kill(leftover.pid, 'SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
});

describe('make run', () => {
  it(
    'comes up, lists the CRDs of every kind, runs the examples on the simulated lab, and Ctrl-C leaves nothing running',
    async () => {
      current = startMakeRun('0');
      const kubeconfig = await waitForKubeconfigLine(current);
      expect(current.output()).toMatch(/try: +kubectl --kubeconfig \S+ get vm,hp,iprof -A/);
      await checkWebConsole(current.output());

      const crds = await kubectl(kubeconfig, ['get', 'crd', '-o', 'name']);
      // One per kind of src/api (no other CRD on the stack).
      expect(crds.split('\n').filter(Boolean).sort()).toEqual(
        RESOURCES.map((resource) => `customresourcedefinition.apiextensions.k8s.io/${crdName(resource)}`).sort(),
      );
      // The example manifests were applied.
      expect(await kubectl(kubeconfig, ['get', 'hostpools', '-o', 'name'])).toContain('hostpool.virtfleet.io/');
      await kubectl(kubeconfig, ['create', 'configmap', 'kept-across-runs', '--from-literal=answer=42']);

      // The lab's hosts are definition files at the fixed path the HostPool names.
      expect(current.output()).toContain(
        `simulated hosts of HostPool lab in ${LAB_HOSTS}: kvm-01.xml, kvm-02.xml, xen-01.xml`,
      );
      expect(current.output()).toContain('VIRTFLEET_LOCAL_LIBVIRT=0: HostPool local not applied');
      expect(current.output()).toMatch(/pools: +lab \(simulated: \/var\/lib\/virtfleet\/lab\/hosts\/\*\.xml\)\n/);
      expect(await kubectl(kubeconfig, ['get', 'hostpools', '-o', 'name'])).not.toContain(
        'hostpool.virtfleet.io/local',
      );

      const [pool, small, db, image, rocky] = await Promise.all([
        untilObject<Pool>(
          kubeconfig,
          ['hostpool', 'lab'],
          (p) => p.status?.readyHosts === 3,
          'HostPool lab: 3 hosts ready',
        ),
        untilObject<Vm>(
          kubeconfig,
          ['vm', 'small'],
          (vm) => vm.status?.phase === 'Running' && condition(vm, 'Ready')?.status === 'True',
          'VirtualMachine small: Running, Ready=True',
        ),
        untilObject<Vm>(
          kubeconfig,
          ['vm', 'db-1'],
          (vm) => vm.status?.phase === 'Running',
          'VirtualMachine db-1: Running',
        ),
        // The test driver cannot upload (no streams); without Internet access the download fails first.
        untilObject<Vm>(
          kubeconfig,
          ['vm', 'cirros'],
          (vm) => ['ProvisioningFailed', 'ImageDownloadFailed'].includes(condition(vm, 'Provisioned')?.reason ?? ''),
          'VirtualMachine cirros: Provisioned=False, ProvisioningFailed or ImageDownloadFailed',
          150_000,
        ),
        // The stack runs the install endpoint, so rocky-1 gets past it, to the first thing this
        // machine lacks: the Secrets hold placeholders, not crypt hashes.
        untilObject<Vm>(
          kubeconfig,
          ['vm', 'rocky-1'],
          (vm) =>
            condition(vm, 'Installed')?.reason === 'ProfileNotValid' &&
            /InvalidSecret/.test(condition(vm, 'Installed')?.message ?? ''),
          'VirtualMachine rocky-1: Installed=False, ProfileNotValid (InvalidSecret)',
        ),
      ]);

      // Three distinct hosts (a test:///default pool would be one host three times), as declared.
      const hosts = Object.fromEntries(
        (pool.status?.hosts ?? []).map((h) => [
          h.name,
          { ready: h.ready, hypervisor: h.hypervisor, capacity: h.capacity },
        ]),
      );
      expect(hosts).toEqual({
        'kvm-01': { ready: true, hypervisor: 'kvm', capacity: { cpus: 8, memory: '16Gi' } },
        'kvm-02': { ready: true, hypervisor: 'kvm', capacity: { cpus: 4, memory: '8Gi' } },
        'xen-01': { ready: true, hypervisor: 'xen', capacity: { cpus: 16, memory: '32Gi' } },
      });

      expect(small.status?.hypervisor).toBe('kvm');
      expect(small.status?.host).toMatch(/^kvm-0[12]$/);
      expect(condition(small, 'Provisioned')).toMatchObject({ status: 'True', reason: 'Defined' });
      // hypervisor auto, workload io: the Xen host.
      expect(db.status).toMatchObject({ host: 'xen-01', hypervisor: 'xen' });
      expect(condition(db, 'Ready')?.status).toBe('True');

      expect(image.status?.phase).toBe('Provisioning');
      expect(condition(image, 'Ready')?.status).toBe('False');
      const provisioned = condition(image, 'Provisioned')!;
      expect(provisioned.status).toBe('False');
      const prefix = `spec.disks[0] (root).source.image.url: image ${IMAGE_URL}: `;
      expect(provisioned.message?.startsWith(prefix)).toBe(true);
      const detail = provisioned.message!.slice(prefix.length);
      expect(detail).toMatch(provisioned.reason === 'ProvisioningFailed' ? /^upload: / : /^(cannot fetch: |HTTP )/);
      expect(detail).toMatch(/ \(host kvm-0[12]\); retrying in \d+ s$/);

      // rocky-1 says plainly what it waits for, and what to do.
      expect(rocky.status?.phase).toBe('Provisioning');
      expect(condition(rocky, 'Installed')).toMatchObject({ status: 'False', reason: 'ProfileNotValid' });
      expect(condition(rocky, 'Installed')?.message).toContain(
        'InstallProfile default/rocky-9 is not valid (InvalidSecret): spec.rootPassword.secretKeyRef: Secret default/rocky-root-password key password-hash holds no crypt hash',
      );
      expect(condition(rocky, 'Installed')?.message).toContain('openssl passwd -6');
      expect(condition(rocky, 'Ready')).toMatchObject({ status: 'False', reason: 'ProfileNotValid' });

      // kube-controller-manager runs: the garbage collector removes what an owner leaves, and a
      // namespace delete completes (kubectl delete waits until the namespace is gone).
      const namespace = 'doomed';
      await kubectl(kubeconfig, ['create', 'namespace', namespace]);
      await kubectl(kubeconfig, ['-n', namespace, 'create', 'configmap', 'owner', '--from-literal=a=1']);
      const ownerUid = await kubectl(kubeconfig, [
        '-n',
        namespace,
        'get',
        'configmap',
        'owner',
        '-o',
        'jsonpath={.metadata.uid}',
      ]);
      const owned = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'owned',
          namespace,
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: ownerUid }],
        },
      };
      await kubectl(kubeconfig, ['create', '-f', '-'], JSON.stringify(owned));
      await kubectl(kubeconfig, ['-n', namespace, 'delete', 'configmap', 'owner']);
      await kubectl(kubeconfig, ['-n', namespace, 'wait', '--for=delete', 'configmap/owned', '--timeout=60s']);
      await kubectl(kubeconfig, ['-n', namespace, 'create', 'configmap', 'left-inside', '--from-literal=a=1']);
      await kubectl(kubeconfig, ['delete', 'namespace', namespace, '--timeout=90s']);
      await expect(kubectl(kubeconfig, ['get', 'namespace', namespace])).rejects.toThrow(/NotFound/);

      // A killed controller is restarted, as a Deployment's pod would be, and says so.
      const firstPid = Number(
        (await untilOutput(current, /controller \(pid (\d+); restarted if it exits\)/, 'the controller pid'))[1],
      );
      expect(alive(firstPid)).toBe(true);
      process.kill(firstPid, 'SIGKILL');
      await untilOutput(
        current,
        /controller exited unexpectedly \(signal SIGKILL\) after [\d.]+ s; restarting it in 1 s \(restart 1; its log: \S+controller\.log\)/,
        'the restart notice',
      );
      const secondPid = Number(
        (await untilOutput(current, /controller restarted \(pid (\d+)\) and ready/, 'the restarted controller'))[1],
      );
      expect(secondPid).not.toBe(firstPid);
      expect(alive(secondPid)).toBe(true);
      expect(hasExited(current.child)).toBe(false);

      await ctrlC(current);
      expect(await leftoversAfterStop()).toEqual([]);
    },
    STACK_TIMEOUT_MS,
  );

  it(
    'reuses the data of the previous run, boots demo on two real hosts when asked to, and stops cleanly again',
    async () => {
      if (current && !hasExited(current.child)) {
        process.kill(-current.child.pid!, 'SIGKILL');
        throw new Error('the first case failed before stopping its stack: this one needs its data and a clean stop');
      }
      const hostFiles = ['kvm-01.xml', 'kvm-02.xml', 'xen-01.xml'].map((file) => `${LAB_HOSTS}/${file}`);
      const modifiedBefore = hostFiles.map((file) => statSync(file).mtimeMs);
      current = startMakeRun('1');
      const kubeconfig = await waitForKubeconfigLine(current);
      const kept = await kubectl(kubeconfig, ['get', 'configmap', 'kept-across-runs', '-o', 'jsonpath={.data.answer}']);
      expect(kept).toBe('42');

      // Unchanged host files are not written again.
      expect(current.output()).toContain(
        `simulated hosts of HostPool lab in ${LAB_HOSTS}: kvm-01.xml, kvm-02.xml, xen-01.xml (all up to date)`,
      );
      expect(hostFiles.map((file) => statSync(file).mtimeMs)).toEqual(modifiedBefore);
      // Two real libvirtd hosts (as the e2e rig starts them) are HostPool local, and demo boots there.
      expect(current.output()).toContain(
        'VIRTFLEET_LOCAL_LIBVIRT=1: starting two real libvirtd hosts as HostPool local...',
      );
      const real = await untilOutput(
        current,
        /real hosts of HostPool local: local-1 \(qemu\+tcp:\/\/10\.250\.(\d+)\.2\/system\), local-2 \(qemu\+tcp:\/\/10\.250\.(\d+)\.2\/system\)/,
        'the real hosts',
      );
      const realNetns = [`vfrig${real[1]}`, `vfrig${real[2]}`];
      expect(current.output()).toMatch(
        /pools: +lab \(simulated: \S+\), local \(real: qemu\+tcp:\/\/\S+ qemu\+tcp:\/\/\S+\)\n/,
      );
      // What to try next, as README shows it.
      for (const line of ['kubectl get vm demo -w', 'virtfleet vm console demo', 'virtfleet vm migrate demo'])
        expect(current.output()).toContain(`\n                ${line}\n`);
      expect(await kubectl(kubeconfig, ['get', 'hostpool', 'local', '-o', 'jsonpath={.spec.hosts[*].uri}'])).toBe(
        `qemu+tcp://10.250.${real[1]}.2/system qemu+tcp://10.250.${real[2]}.2/system`,
      );
      interface Graphics {
        host?: string;
        address?: string;
        port?: number;
      }
      const demo = await untilObject<Vm & { status?: { graphics?: Graphics } }>(
        kubeconfig,
        ['vm', 'demo'],
        (vm) => vm.status?.phase === 'Running' && vm.status.graphics?.host === vm.status.host,
        'VirtualMachine demo: Running on a local host, its VNC server recorded',
        150_000,
      );
      expect(demo.status?.host).toMatch(/^local-[12]$/);
      expect(demo.status?.hypervisor).toBe('kvm');
      // VNC listens on the management network's address of that very host.
      const hostAddress = `10.250.${real[demo.status?.host === 'local-1' ? 1 : 2]}.2`;
      expect(demo.status?.graphics).toMatchObject({ address: hostAddress, port: expect.any(Number) });

      // The guest, through its serial console as a person sees it: its heartbeat lines, and the
      // answer to a command typed into its shell.
      const console_ = new PtyProcess(
        // prettier-ignore
        [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'vm', 'console', 'demo', '--kubeconfig', kubeconfig],
        { cwd: repoRoot() },
      );
      try {
        await console_.until(/Escape character is \^\]/, 60_000);
        await console_.until(/VIRTFLEET-GUEST-HEARTBEAT n=\d+/, 30_000);
        console_.type('echo demo-$((6*7))-answer\r');
        await console_.until(/demo-42-answer/, 30_000);
        console_.type('\x1d'); // Ctrl-]
        expect(await console_.exited).toBe(0);
      } finally {
        console_.kill();
      }

      // `virtfleet vm migrate demo` moves it live to the other real host, VNC with it.
      const migrated = await runVirtfleet(kubeconfig, ['vm', 'migrate', 'demo']);
      expect(migrated.stdout).toMatch(/migrate done: migrated live from local-[12] to local-[12]/);
      const moved = await untilObject<Vm & { status?: { graphics?: Graphics } }>(
        kubeconfig,
        ['vm', 'demo'],
        (vm) =>
          vm.status?.phase === 'Running' &&
          vm.status.host !== demo.status?.host &&
          vm.status.graphics?.host === vm.status.host,
        'VirtualMachine demo: Running on the other local host',
      );
      expect(moved.status?.graphics?.address).toBe(`10.250.${real[moved.status?.host === 'local-1' ? 1 : 2]}.2`);

      // The examples were applied again, server-side, by their own field manager: no drift, no
      // last-applied-configuration, and a user's server-side diff is empty (kubectl exits 1 on a difference).
      expect(await kubectl(kubeconfig, ['diff', '--server-side', '-f', join(repoRoot(), 'manifests')])).toBe('');
      const small = JSON.parse(
        await kubectl(kubeconfig, ['get', 'vm', 'small', '-o', 'json', '--show-managed-fields']),
      ) as Vm;
      expect(small.metadata?.annotations?.['kubectl.kubernetes.io/last-applied-configuration']).toBeUndefined();
      expect(small.metadata?.managedFields?.filter((f) => f.operation === 'Apply').map((f) => f.manager)).toEqual([
        'virtfleet-examples',
      ]);

      // With real password hashes, rocky-1 goes on to the install media, as far as the simulated
      // hosts allow: the test driver cannot upload files into a storage pool.
      const hash = '$6$virtfleet$' + 'x'.repeat(86);
      for (const name of ['rocky-root-password', 'rocky-admin-password']) {
        await kubectl(kubeconfig, [
          'patch',
          'secret',
          name,
          '-p',
          JSON.stringify({ data: { 'password-hash': Buffer.from(hash).toString('base64') } }),
        ]);
      }
      const media = await untilObject<Vm>(
        kubeconfig,
        ['vm', 'rocky-1'],
        (vm) => condition(vm, 'Installed')?.reason === 'InstallMediaFailed',
        'VirtualMachine rocky-1: Installed=False, InstallMediaFailed',
      );
      expect(condition(media, 'Installed')?.message).toMatch(
        /^PXE boot file \S+ in storage pool \S+: upload .*not supported by the connection driver.*; retrying$/,
      );

      await ctrlC(current);
      expect(await leftoversAfterStop()).toEqual([]);
      expect(current.output()).toContain('nothing is left running');
      // The real hosts went too: their namespaces, with every libvirtd, virtlockd and QEMU in them.
      const { stdout: netns } = await run('ip', ['netns', 'list']);
      expect(netns.split('\n').filter((line) => realNetns.includes(line.split(' ')[0] ?? ''))).toEqual([]);
    },
    STACK_TIMEOUT_MS,
  );
});
