// The two ways an image file reaches a host's pool, timed on the same file and host:
// - through the API server: `virtfleet image upload`'s POST (src/cli/image.ts sendFile) through a
//   real kube-apiserver's aggregation to `virtfleet api`, which stages and checks the file (202),
//   then writes it into a new volume on the host (status.upload Done);
// - straight to libvirt: `virsh vol-create-as` + `virsh vol-upload` from this machine.
// The API server runs as its own process with a control plane (src/devstack), as in the tests.
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { sendFile, sha256OfFile } from '../../src/cli/image.js';
import { VIRTUAL_MACHINE_IMAGE, type ImageObject } from '../../src/controllers/image/resource.js';
import { HOST_POOL } from '../../src/controllers/resources.js';
import { ControlPlane } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { KubeClient, type KubeObject } from '../../src/runtime/kube-client.js';
import { ApiServerProcess } from '../../test/harness/api-server.js';

const run = promisify(execFile);
const NS = 'default';

export interface UploadFigures {
  /** Per run: until the 202 (bytes through kube-apiserver, staged and checked), and until Done. */
  viaApi: Array<{ acceptedMs: number; doneMs: number }>;
  /** Per run: virsh vol-create-as + vol-upload. */
  virsh: number[];
}

const msSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

async function untilDone(client: KubeClient, name: string): Promise<void> {
  for (const deadline = Date.now() + 600_000; ;) {
    const upload = (await client.get<ImageObject>(VIRTUAL_MACHINE_IMAGE, NS, name)).status?.upload;
    if (upload?.state === 'Done') return;
    if (upload?.state === 'Failed') throw new Error(`upload ${name} failed: ${upload.message}`);
    if (Date.now() > deadline) throw new Error(`upload ${name} not done in 10 min`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function measureUploads(
  file: string,
  uri: string,
  storage: { pool: string; path: string },
  dir: string,
  runs: number,
): Promise<UploadFigures> {
  const size = statSync(file).size;
  const sha256 = await sha256OfFile(file);
  const figures: UploadFigures = { viaApi: [], virsh: [] };

  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await run('virsh', ['-c', uri, 'vol-create-as', storage.pool, `virsh-${i}`, String(size), '--format', 'raw']);
    await run('virsh', ['-c', uri, 'vol-upload', '--pool', storage.pool, `virsh-${i}`, file]);
    figures.virsh.push(msSince(start));
  }

  const plane = new ControlPlane({ stateDir: join(dir, 'control-plane'), unsafeNoFsync: true });
  let api: ApiServerProcess | undefined;
  try {
    const info = await plane.start();
    await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
    const config = new KubeConfig();
    config.loadFromFile(info.kubeconfig);
    const admin = new KubeClient(config);
    api = new ApiServerProcess(info.kubeconfig, info.pki, join(dir, 'api.log'), [
      '--upload-dir',
      dir,
      '--max-upload-bytes',
      String(size),
      '--log-level',
      'info',
    ]);
    await api.start(admin);
    await admin.create(HOST_POOL, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: 'bench' },
      spec: { hosts: [{ name: 'h1', uri }], storage: storage },
    } as KubeObject);
    for (let i = 0; i < runs; i++) {
      const name = `upload-${i}`;
      await admin.create(VIRTUAL_MACHINE_IMAGE, {
        apiVersion: 'virtfleet.io/v1alpha1',
        kind: 'VirtualMachineImage',
        metadata: { name, namespace: NS },
        spec: { hostPoolRef: { name: 'bench' }, source: { upload: {} } },
      } as KubeObject);
      const start = process.hrtime.bigint();
      await sendFile(config, NS, name, file, size, sha256, { tty: false, write: () => undefined });
      const acceptedMs = msSince(start);
      await untilDone(admin, name);
      figures.viaApi.push({ acceptedMs, doneMs: msSince(start) });
    }
    return figures;
  } catch (error) {
    const log = api ? `\nvirtfleet api log:\n${readFileSync(join(dir, 'api.log'), 'utf8').slice(-4000)}` : '';
    throw new Error(`${String(error)}${log}`, { cause: error });
  } finally {
    await api?.stop();
    await plane.stop();
  }
}
