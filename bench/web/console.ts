// The web console with 1,000 VMs: a real control plane, `virtfleet api --web-port` (as the
// console tests start it), Debian's chromium through playwright-core. Prints how long from
// pressing "Log in" until the VMs page lists every VM (login, TokenReview, the Fleet page, the
// VMs watch's snapshot, the first rows), how long a status change takes to show in a row (from
// before the PATCH until the row's text changes: the API write, the watch, the SSE relay and the
// page's next frame), how many rows are in the DOM, and the app's JavaScript gzipped.
//
//   npm run build && tsx bench/web/console.ts [--vms 1000] [--loads 3] [--changes 50]
import { readdirSync, readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KubeConfig } from '@kubernetes/client-node';
import { VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane } from '../../src/devstack/controlplane.js';
import { installCrds } from '../../src/devstack/crds.js';
import { freePort } from '../../src/devstack/ports.js';
import { KubeClient, type KubeObject } from '../../src/runtime/kube-client.js';
import { defaultAppDir } from '../../src/web/static.js';
import { ApiServerProcess } from '../../test/harness/api-server.js';
import { launchBrowser } from '../../test/harness/browser.js';
import { kubectl, serviceAccountToken } from '../../test/harness/service-accounts.js';
import { arg } from '../common.js';

const VMS = arg('vms', 1000);
const LOADS = arg('loads', 3);
const CHANGES = arg('changes', 50);
const NS = 'bench-web';

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))]!;

/** Gzipped JavaScript: all of it, and what the first load fetches (the lazy chunks — xterm.js, the form — come later). */
function bundleGzipBytes(): { all: number; firstLoad: number } {
  const assets = join(defaultAppDir(), 'assets');
  const html = readFileSync(join(defaultAppDir(), 'index.html'), 'utf8');
  let all = 0;
  let firstLoad = 0;
  for (const file of readdirSync(assets).filter((name) => name.endsWith('.js'))) {
    const bytes = gzipSync(readFileSync(join(assets, file))).length;
    all += bytes;
    if (html.includes(`/assets/${file}`)) firstLoad += bytes;
  }
  return { all, firstLoad };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'virtfleet-bench-web-'));
  const plane = new ControlPlane({ stateDir: join(dir, 'control-plane'), unsafeNoFsync: true });
  let api: ApiServerProcess | undefined;
  try {
    const info = await plane.start();
    await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
    const config = new KubeConfig();
    config.loadFromFile(info.kubeconfig);
    const admin = new KubeClient(config);
    const run = (args: string[]) => kubectl(info.binaries.kubectl, info.kubeconfig, args);
    const own = join(dir, 'api.kubeconfig');
    writeFileSync(own, readFileSync(info.kubeconfig));
    const webPort = await freePort();
    api = new ApiServerProcess(own, info.pki, join(dir, 'api.log'), ['--web-port', String(webPort)]);
    await api.start(admin);
    await run(['create', 'namespace', NS]);
    const token = await serviceAccountToken(run, 'bench-people', 'bench-admin');
    await run([
      'create',
      'clusterrolebinding',
      'bench-admin',
      '--clusterrole=cluster-admin',
      '--serviceaccount=bench-people:bench-admin',
    ]);
    for (let i = 0; i < VMS; i += 20)
      await Promise.all(
        Array.from({ length: Math.min(20, VMS - i) }, (_, j) =>
          admin.create(VIRTUAL_MACHINE, {
            apiVersion: 'virtfleet.io/v1alpha1',
            kind: 'VirtualMachine',
            metadata: { name: `vm-${String(i + j).padStart(4, '0')}`, namespace: NS },
            spec: { hostPoolRef: { name: 'nowhere' }, memory: '128Mi', kernelBoot: { kernel: '/boot/vmlinuz' } },
          } as KubeObject),
        ),
      );
    const base = `https://127.0.0.1:${webPort}`;
    const browser = await launchBrowser();
    const loads: number[] = [];
    const latencies: number[] = [];
    let rowsInDom = 0;
    try {
      for (let round = 0; round < LOADS; round++) {
        const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        await page.goto(`${base}/`);
        await page.getByLabel('Bearer token').fill(token);
        const start = performance.now();
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.getByRole('heading', { name: 'Fleet' }).waitFor();
        await page.getByRole('link', { name: 'VMs' }).click();
        await page.getByText(`${VMS} of ${VMS} VMs`).waitFor({ timeout: 120_000 });
        await page.locator(`[data-vm="${NS}/vm-0000"]`).waitFor();
        loads.push(performance.now() - start);
        rowsInDom = await page.locator('.vm-space .vm-row').count();
        if (round === LOADS - 1)
          for (let i = 0; i < CHANGES; i++) {
            const phase = i % 2 ? 'Running' : 'Stopped';
            const begin = performance.now();
            await admin.patch(VIRTUAL_MACHINE, NS, 'vm-0003', { status: { phase } }, { subresource: 'status' });
            await page.locator(`[data-vm="${NS}/vm-0003"] [data-phase]`, { hasText: phase }).waitFor();
            latencies.push(performance.now() - begin);
          }
        await context.close();
      }
    } finally {
      await browser.close();
    }
    const round = (value: number) => Math.round(value);
    console.log(`web console, ${VMS} VMs (${LOADS} logins, ${CHANGES} status changes):`);
    console.log(
      `  login → VMs page listing all ${VMS}: ${loads.map(round).join(', ')} ms (median ${round(percentile(loads, 50))})`,
    );
    console.log(
      `  status change visible in its row: p50 ${round(percentile(latencies, 50))} ms, p99 ${round(percentile(latencies, 99))} ms`,
    );
    console.log(`  rows in the DOM: ${rowsInDom} of ${VMS} (virtualised)`);
    const js = bundleGzipBytes();
    console.log(
      `  JavaScript gzipped: ${(js.all / 1024).toFixed(1)} kB in all, ${(js.firstLoad / 1024).toFixed(1)} kB on the first load`,
    );
  } finally {
    await api?.stop();
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
