// `make image-test`: the controller run from the built image's filesystem reconciles a VM on a
// real kube-apiserver + etcd, with in-cluster credentials as a pod has them: deploy/'s RBAC, a
// ServiceAccount token (TokenRequest) and the cluster CA mounted at
// /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT, no kubeconfig.
// `buildah run` (chroot isolation, host network: the API server listens on loopback) starts it
// as the image's user. Prints what it did and how long; exits 1 with the reason when the VM does
// not run.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { testHosts } from '../integration/hypervisor/test-hosts.js';

const IMAGE = process.env.IMAGE ?? 'localhost/virtfleet:dev';
const NAMESPACE = 'virtfleet-system';
const SA = 'virtfleet-controller';
const root = repoRoot();
const work = mkdtempSync(join(tmpdir(), 'virtfleet-image-'));
const started = Date.now();
const say = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${line}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function buildah(args: string[]): string {
  const run = spawnSync('buildah', args, { encoding: 'utf8', env: { ...process.env, STORAGE_DRIVER: 'vfs' } });
  if (run.status !== 0) throw new Error(`buildah ${args.join(' ')}: ${run.stderr}`);
  return run.stdout.trim();
}

async function main(): Promise<void> {
  const plane = new ControlPlane({ stateDir: join(work, 'plane'), unsafeNoFsync: true });
  const hosts = testHosts();
  let container = '';
  let controller: ReturnType<typeof spawn> | undefined;
  try {
    const info = await plane.start();
    const kubectl = (args: string[], input?: string) => {
      const run = spawnSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, ...args], {
        input,
        encoding: 'utf8',
      });
      if (run.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${run.stderr}`);
      return run.stdout;
    };
    await installCrds(info.binaries.kubectl, info.kubeconfig, root);
    kubectl(['apply', '-k', join(root, 'deploy')]);
    say(`control plane at ${info.server}; deploy/ applied (RBAC, ServiceAccount ${NAMESPACE}/${SA})`);

    // What the kubelet mounts into a pod of the Deployment.
    const secrets = join(work, 'serviceaccount');
    mkdirSync(secrets);
    writeFileSync(join(secrets, 'token'), kubectl(['-n', NAMESPACE, 'create', 'token', SA, '--duration=1h']).trim());
    writeFileSync(join(secrets, 'ca.crt'), readFileSync(info.pki.caCert));
    writeFileSync(join(secrets, 'namespace'), NAMESPACE);
    // Readable by the image's user (65532), as the kubelet's projected volume is.
    chmodSync(secrets, 0o755);
    const url = new URL(info.server);

    const uri = hosts.host('image-kvm-1', { cpus: 4, memoryKiB: 4 * 1024 * 1024 });
    chmodSync(hosts.dir, 0o755);
    kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'virtfleet.io/v1alpha1',
            kind: 'HostPool',
            metadata: { name: 'image' },
            spec: { hosts: [{ name: 'kvm-1', uri, hypervisor: 'kvm' }] },
          },
          {
            apiVersion: 'virtfleet.io/v1alpha1',
            kind: 'VirtualMachine',
            metadata: { name: 'from-image', namespace: 'default' },
            spec: {
              hostPoolRef: { name: 'image' },
              memory: '128Mi',
              kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
            },
          },
        ],
      }),
    );

    container = buildah(['from', '--pull=false', IMAGE]);
    const [metrics, health] = [await freePort(), await freePort()];
    const args = [
      'run',
      '--isolation',
      'chroot',
      '--user',
      '65532:65532',
      '--volume',
      // /var/run is a link to /run, on which buildah run mounts a tmpfs: mount below the real path.
      `${secrets}:/run/secrets/kubernetes.io/serviceaccount:ro`,
      '--volume',
      `${hosts.dir}:${hosts.dir}:ro`,
      '--env',
      `KUBERNETES_SERVICE_HOST=${url.hostname}`,
      '--env',
      `KUBERNETES_SERVICE_PORT=${url.port}`,
      '--env',
      'POD_NAME=virtfleet-controller-image',
      '--env',
      `POD_NAMESPACE=${NAMESPACE}`,
      container,
      '--',
      'node',
      '/app/dist/cli/main.js',
      'controller',
      '--leader-elect',
      `--metrics-address=127.0.0.1:${metrics}`,
      `--health-address=127.0.0.1:${health}`,
    ];
    say(`buildah ${args.join(' ')}`);
    const output: string[] = [];
    controller = spawn('buildah', args, { env: { ...process.env, STORAGE_DRIVER: 'vfs' } });
    controller.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    controller.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));

    const deadline = Date.now() + 120_000;
    for (;;) {
      const vm = JSON.parse(
        kubectl(['-n', 'default', 'get', 'virtualmachines.virtfleet.io', 'from-image', '-o', 'json']),
      ) as {
        status?: { phase?: string; host?: string; conditions?: { type: string; status: string; message?: string }[] };
      };
      const ready = vm.status?.conditions?.find((c) => c.type === 'Ready');
      if (vm.status?.phase === 'Running' && ready?.status === 'True') {
        say(`VM default/from-image Running on ${vm.status.host}, Ready: ${ready.message}`);
        break;
      }
      if (controller.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `the VM did not run (status ${JSON.stringify(vm.status)}); controller ${controller.exitCode === null ? 'still running' : `exited ${controller.exitCode}`}, its output:\n${output.join('').slice(-4000)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const lease = kubectl([
      '-n',
      NAMESPACE,
      'get',
      'lease',
      'virtfleet-controller',
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
    say(`lease virtfleet-controller held by ${lease}`);
  } finally {
    controller?.kill('SIGTERM');
    if (container) buildah(['rm', container]);
    await plane.stop();
    hosts.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => say('ok: the controller from the image reconciled a VM with in-cluster credentials'),
  (error: unknown) => {
    process.stderr.write(`image test failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
