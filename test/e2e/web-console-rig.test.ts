// The web console end to end on real hosts (issue 15, Done 1): the parts `make run` runs — a
// real kube-apiserver (aggregation on) + etcd, the controller, `virtfleet api --web-port` as its
// own process behind the aggregator, a rig host (real libvirtd + QEMU, the tiny guest) — and
// Debian's chromium driven by playwright-core, people logging in with ServiceAccount tokens.
// Not `make run` itself: its simulated lab and second real host add minutes and nothing this
// suite looks at. One guest, booted once through the form, serves every case.
//
// The browser contexts keep the page's CSP (no bypassCSP): the console tab must work under it,
// and any CSP violation fails the test.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { validateObject } from '../../src/api/validate.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../src/controllers/resources.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { freePort } from '../../src/devstack/ports.js';
import { defineManagementNetwork, MANAGEMENT_NETWORK } from '../../src/devstack/real-hosts.js';
import { isNotFound } from '../../src/runtime/kube-client.js';
import { defaultAppDir } from '../../src/web/static.js';
import { ApiServerProcess } from '../harness/api-server.js';
import { launchBrowser, screenshotDir } from '../harness/browser.js';
import { serviceAccountToken } from '../harness/service-accounts.js';
import { kubectl } from '../harness/service-accounts.js';
import { guestImage, type GuestImage } from '../rig/guest.js';
import { hostPool, isRunning, NAMESPACE, RigController } from './harness.js';

const POOL = 'rig-web';
const VM = 'web-demo';
const PEOPLE = 'web-people';
const HTML = '<img src=x onerror="window.__pwned=1"><b>bold</b> & "quotes"';
const CONTEXT = { ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } };

const stack: RigController = new RigController({
  hosts: 1,
  tag: 'web',
  detail: () => `VM: ${JSON.stringify(stack.vm(VM)?.status)}`,
});
const shots = screenshotDir('web-console-rig');
let api: ApiServerProcess;
let base = '';
let image: GuestImage;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
const tokens = { admin: '', viewer: '' };
/** The page's own errors and every CSP violation, from all pages: each case ends expecting none. */
const pageErrors: string[] = [];
let admin: { context: BrowserContext; page: Page };

beforeAll(async () => {
  if (!readFileSync(join(defaultAppDir(), 'index.html'), 'utf8'))
    throw new Error('the web app is not built: run `make build`');
  await stack.start();
  const run = (args: string[]) => kubectl(stack.info.binaries.kubectl, stack.info.kubeconfig, args);
  const webPort = await freePort();
  api = new ApiServerProcess(stack.info.kubeconfig, stack.info.pki, join(stack.dir, 'api.log'), [
    '--web-port',
    String(webPort),
  ]);
  await api.start(stack.client);
  base = `https://127.0.0.1:${webPort}`;
  await run(['apply', '--server-side', '-f', join(repoRoot(), 'deploy/base/user-roles.yaml')]);
  // The test control plane runs no kube-controller-manager, so Kubernetes' aggregated view role
  // is empty: Events are granted by a role of their own.
  await run(['create', 'clusterrole', 'web-events-reader', '--verb=get,list,watch', '--resource=events']);
  tokens.admin = await serviceAccountToken(run, PEOPLE, 'web-admin');
  for (const role of ['virtfleet-admin', 'web-events-reader'])
    await run([
      'create',
      'clusterrolebinding',
      `web-admin-${role}`,
      `--clusterrole=${role}`,
      `--serviceaccount=${PEOPLE}:web-admin`,
    ]);
  tokens.viewer = await serviceAccountToken(run, PEOPLE, 'web-viewer');
  for (const role of ['virtfleet-view', 'web-events-reader'])
    await run([
      'create',
      'rolebinding',
      `web-viewer-${role}`,
      '-n',
      NAMESPACE,
      `--clusterrole=${role}`,
      `--serviceaccount=${PEOPLE}:web-viewer`,
    ]);
  image = await guestImage();
  // VNC on the host's management network, as make run's pool local has it.
  for (const host of stack.rig.hosts) await defineManagementNetwork(host.uri, host.interface, host.dir);
  await stack.client.create(
    HOST_POOL,
    hostPool(POOL, { hosts: stack.poolHosts(), graphics: { listen: { network: MANAGEMENT_NETWORK } } }),
  );
  browser = await launchBrowser();
  admin = await login(tokens.admin);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await api?.stop();
  await stack.deleteVms(60_000);
  await stack.stop();
}, 180_000);

async function login(token: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(CONTEXT);
  const page = await context.newPage();
  // Runs before the page's own scripts (injected by the browser, not subject to the page's CSP).
  await page.addInitScript(() =>
    (globalThis as any).document.addEventListener('securitypolicyviolation', (event: any) =>
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI} ${event.sample}`),
    ),
  );
  page.on('pageerror', (error) => pageErrors.push(`${error.name}: ${error.message}`));
  page.on('console', (message) => {
    // The browser logs every 4xx it got (refusals the tests provoke).
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      pageErrors.push(message.text());
  });
  await page.goto(base + '/');
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  return { context, page };
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's serious and critical findings. axe is evaluated through DevTools rather than added
 * as a <script>, so the page keeps its CSP.
 */
async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const { checked, found } = await page.evaluate(async () => {
    const result = await (globalThis as any).axe.run({ resultTypes: ['violations'] });
    const violations = result.violations as { id: string; impact: string; nodes: { target: string[] }[] }[];
    return {
      checked: (result.passes as unknown[]).length,
      found: violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    };
  });
  expect(checked).toBeGreaterThan(0);
  return found;
}

/** Whether the page scrolls sideways at a phone's width (it must not; wide parts scroll inside). */
async function overflowsAtPhoneWidth(page: Page): Promise<string | undefined> {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    const widths = await page.evaluate(() => {
      const root = (globalThis as any).document.documentElement as { scrollWidth: number; clientWidth: number };
      return { scroll: root.scrollWidth, client: root.clientWidth };
    });
    return widths.scroll > widths.client ? `${widths.scroll} > ${widths.client}` : undefined;
  } finally {
    await page.setViewportSize(CONTEXT.viewport);
  }
}

/** Whether VM `name` exists (read as the cluster admin). */
const exists = (name: string) =>
  stack.client.get(VIRTUAL_MACHINE, NAMESPACE, name).then(
    () => true,
    (error: unknown) => {
      if (isNotFound(error)) return false;
      throw error;
    },
  );

/** The text on the terminal's screen (xterm's DOM renderer: one element per row). */
const screenText = (page: Page) => page.locator('.xterm-rows').innerText();

async function screenUntil(page: Page, pattern: RegExp, ms: number): Promise<string> {
  for (const deadline = Date.now() + ms; ;) {
    const text = await screenText(page);
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`the console screen did not show ${pattern} within ${ms} ms:\n${text}`);
    await page.waitForTimeout(200);
  }
}

describe('the web console on a rig host', () => {
  it('creates a VM through the form: a bad memory value is shown at its field first, nothing sent', async () => {
    const { page } = admin;
    await page.screenshot({ path: join(shots, 'fleet.png'), fullPage: true });
    await page.getByRole('link', { name: 'VMs', exact: true }).click();
    await page.getByRole('link', { name: 'Create a VM' }).click();
    await page.getByRole('heading', { name: 'Create a VM' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill(VM);
    await page.locator('select[name="spec.hostPoolRef"]').selectOption(POOL);
    await page.locator('select[name="spec.hypervisor"]').selectOption('kvm');
    await page.getByLabel('Memory').fill('lots');
    await page.getByLabel('Kernel', { exact: true }).fill(image.kernel);
    await page.getByLabel('Initrd').fill(image.initrd);
    await page.getByLabel('Kernel command line').fill('console=ttyS0 panic=-1');
    await page.getByLabel('a VNC display (spec.graphics)').check();
    await page.getByRole('button', { name: 'Create' }).click();
    // The message and path `virtfleet validate` gives for the same object.
    const expected = validateObject({
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: VM, namespace: NAMESPACE },
      spec: {
        hostPoolRef: { name: POOL },
        hypervisor: 'kvm',
        memory: 'lots',
        cpu: { cores: 1 },
        kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1' },
        graphics: { type: 'vnc' },
      },
    });
    expect(expected.map((p) => p.path)).toEqual(['spec.memory']);
    const problem = page.locator('[data-path="spec.memory"] .field-problem');
    await problem.waitFor();
    expect(await problem.innerText()).toBe(`spec.memory: ${expected[0]!.message}`);
    expect(await page.getByLabel('Memory').getAttribute('aria-invalid')).toBe('true');
    await page.screenshot({ path: join(shots, 'create-field-error.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    expect(await exists(VM)).toBe(false);

    await page.getByLabel('Memory').fill('128Mi');
    await page.getByRole('button', { name: 'Check (dry run)' }).click();
    await page.locator('[data-outcome]', { hasText: 'the API server accepts it (dry run)' }).waitFor();
    const yaml = await page.locator('[data-yaml]').innerText();
    expect(yaml).toContain(`name: ${VM}`);
    expect(yaml).toContain('memory: 128Mi');
    expect(yaml).toContain('runStrategy: Always'); // the API server's default, shown as it will be
    await page.screenshot({ path: join(shots, 'create.png'), fullPage: true });
    expect(await exists(VM)).toBe(false);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(`${base}/vms/${NAMESPACE}/${VM}`);
    // Created by the form (the console's field manager), as the person.
    const made = await stack.client.get(VIRTUAL_MACHINE, NAMESPACE, VM);
    const managers = (made.metadata as { managedFields?: { manager?: string }[] }).managedFields ?? [];
    expect(managers.map((m) => m.manager)).toContain('virtfleet-web');
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('shows it reach Running without a reload', async () => {
    const { page } = admin;
    await page.evaluate(() => ((globalThis as any).__sameDocument = true));
    await page.locator('[data-field="phase"]', { hasText: 'Running' }).waitFor({ timeout: 120_000 });
    expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
    expect(isRunning(stack.vm(VM))).toBe(true);
    await page.screenshot({ path: join(shots, 'vm-detail.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 150_000);

  it("opens its serial console: reads the guest's marker, types a command and reads the answer", async () => {
    const { page } = admin;
    await page.getByRole('tab', { name: 'Console' }).click();
    await page.locator('[data-console-state="open"]').waitFor({ timeout: 60_000 });
    // The guest prints a heartbeat line every second on its console (test/rig/README.md).
    await screenUntil(page, /VIRTFLEET-GUEST-HEARTBEAT n=\d+/, 30_000);
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('echo web-$((6*7))-answer\r');
    await screenUntil(page, /web-42-answer/, 30_000);
    expect(readFileSync(api.logFile, 'utf8')).toMatch(
      new RegExp(`"user":"system:serviceaccount:${PEOPLE}:web-admin"[^\\n]*"msg":"web console session opened"`),
    );
    await page.screenshot({ path: join(shots, 'console.png') });
    expect(await axeViolations(page)).toEqual([]);
    expect(await overflowsAtPhoneWidth(page)).toBeUndefined();
    // The README's picture (docs/web-console.png, copied from here: docs/web.md says how).
    await page.screenshot({ path: join(shots, 'readme-console.png'), clip: { x: 0, y: 0, width: 1280, height: 670 } });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it("shows its display in the VNC tab (noVNC over virtualmachines/vnc): RFB's handshake completes", async () => {
    const { page } = admin;
    await page.getByRole('tab', { name: 'VNC' }).click();
    // noVNC's connect event: the RFB handshake and ServerInit went through the proxy and the aggregator.
    await page.locator('[data-vnc-state="open"]').waitFor({ timeout: 60_000 });
    // And the guest's framebuffer arrived: the firmware's text is drawn (light pixels on black).
    await page.waitForFunction(
      () => {
        const canvas = (globalThis as any).document.querySelector('.vnc-screen canvas');
        if (!canvas || canvas.width === 0) return false;
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
          .data as Uint8ClampedArray;
        let light = 0;
        for (let i = 0; i < pixels.length; i += 4) if (pixels[i]! > 128 && pixels[i + 1]! > 128) light++;
        return light > 100;
      },
      undefined,
      { timeout: 30_000 },
    );
    expect(readFileSync(api.logFile, 'utf8')).toMatch(/"msg":"web vnc session opened"/);
    await page.screenshot({ path: join(shots, 'vnc.png') });
    expect(await axeViolations(page)).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 90_000);

  it('stops it from the page; the console says it ended', async () => {
    const { page } = admin;
    await page.getByRole('tab', { name: 'Overview' }).click();
    await page.locator('button[data-action="stop"]').click();
    await page.locator('[data-field="phase"]', { hasText: 'Stopped' }).waitFor({ timeout: 90_000 });
    await page.getByRole('tab', { name: 'Console' }).click();
    await page.locator('[data-console-state="closed"]').waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(shots, 'stopped.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('shows a view-only person no action buttons, refuses their console, and shows a forged write its 403', async () => {
    const viewer = await login(tokens.viewer);
    const page = viewer.page;
    try {
      await page.goto(`${base}/vms/${NAMESPACE}/${VM}`);
      await page
        .locator('[data-allowed="false"]')
        .first()
        .waitFor({ state: 'attached' })
        .catch(async (error: unknown) => {
          await page.screenshot({ path: join(shots, 'viewer-failed.png'), fullPage: true });
          throw new Error(`${String(error)}\npage errors: ${pageErrors.join('\n')}`);
        });
      expect(await page.locator('button[data-action]').count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Delete' }).count()).toBe(0);
      await page.getByRole('tab', { name: 'Console' }).click();
      const refusal = page
        .getByRole('alert')
        .filter({ hasText: `you may not get virtualmachines/console "${VM}" in namespace ${NAMESPACE}` });
      await refusal.waitFor();
      await page.screenshot({ path: join(shots, 'viewer-console.png'), fullPage: true });
      // Forged from the view-only session, with its CSRF token: the API server's 403 in words.
      const forged = await page.evaluate(
        async ({ ns, name }) => {
          const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
          const response = await fetch(`/api/namespaces/${ns}/virtualmachines/${name}/action`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
            body: JSON.stringify({ action: 'start' }),
          });
          return { status: response.status, body: (await response.json()) as Record<string, string> };
        },
        { ns: NAMESPACE, name: VM },
      );
      expect(forged.status).toBe(403);
      expect(forged.body.message).toBe(`you may not patch virtualmachines "${VM}" in namespace ${NAMESPACE}`);
      expect(forged.body.apiMessage).toMatch(/cannot patch resource "virtualmachines"/);
      // And the console forged the same way: the subresource's SubjectAccessReview refuses it.
      const consoleTry = await page.evaluate(
        async ({ ns, name }) => {
          const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
          const ws = new WebSocket(
            `wss://${(globalThis as any).location.host}/api/namespaces/${ns}/virtualmachines/${name}/console`,
          );
          const said: string[] = [];
          ws.onopen = () => ws.send(JSON.stringify({ csrf: session.csrfToken }));
          ws.onmessage = (event) => said.push(String(event.data));
          return new Promise<{ code: number; reason: string; said: string[] }>((resolve) => {
            ws.onclose = (event) => resolve({ code: event.code, reason: event.reason, said });
          });
        },
        { ns: NAMESPACE, name: VM },
      );
      expect(consoleTry.code).toBe(4403);
      expect(consoleTry.reason).toBe(`you may not get virtualmachines/console "${VM}" in namespace ${NAMESPACE}`);
      expect(JSON.parse(consoleTry.said[0]!).apiMessage).toMatch(/cannot get resource "virtualmachines\/console"/);
      expect(pageErrors).toEqual([]);
    } finally {
      await viewer.context.close();
    }
  }, 60_000);

  it('shows HTML from the cluster as text: an annotation, and a name the validator refuses', async () => {
    const { page } = admin;
    await stack.client.create(VIRTUAL_MACHINE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'html-note', namespace: NAMESPACE, annotations: { 'example.com/note': HTML } },
      spec: {
        hostPoolRef: { name: POOL },
        memory: '128Mi',
        runStrategy: 'Halted',
        kernelBoot: { kernel: image.kernel },
      },
    });
    await page.goto(`${base}/vms/${NAMESPACE}/html-note`);
    const note = page.locator('dd', { hasText: 'window.__pwned' });
    await note.waitFor();
    expect(await note.textContent()).toBe(HTML);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.locator('main b', { hasText: 'bold' }).count()).toBe(0);
    await page.goto(`${base}/vms/new`);
    await page.getByLabel('Name', { exact: true }).fill('<b>x</b>');
    await page.getByRole('button', { name: 'Check (dry run)' }).click();
    const problem = page.locator('[data-path="metadata.name"] .field-problem');
    await problem.waitFor();
    expect(await problem.innerText()).toContain('<b>x</b>');
    expect(await page.locator('main b', { hasText: 'x' }).count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined();
    await page.screenshot({ path: join(shots, 'html-as-text.png'), fullPage: true });
    for (const [path, name] of [
      ['/hosts', 'hosts'],
      ['/profiles', 'profiles'],
      ['/vms', 'vms'],
    ] as const) {
      await page.goto(base + path);
      await page.locator('[data-state="live"]').first().waitFor();
      await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    }
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('refuses a console upgrade from another origin or without a session, before any byte of the stream', async () => {
    const ca = readFileSync(stack.info.pki.caCert);
    const url = `${base.replace('https', 'wss')}/api/namespaces/${NAMESPACE}/virtualmachines/${VM}/console`;
    const [cookie] = (await admin.context.cookies()).filter((c) => c.name === 'virtfleet-session');
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, { ca, headers });
        ws.once('unexpected-response', (_request, response) => {
          resolve(response.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('open', () => reject(new Error('the upgrade was accepted')));
        ws.once('error', () => undefined);
      });
    expect(await status({ origin: 'https://evil.example', cookie: `virtfleet-session=${cookie!.value}` })).toBe(403);
    expect(await status({ origin: base })).toBe(401);
  }, 30_000);

  it('logs out: the old cookie opens nothing', async () => {
    const { page, context } = admin;
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'virtfleet-session');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Bearer token').waitFor();
    await page.screenshot({ path: join(shots, 'login.png') });
    // The old cookie, sent from Node: the session is gone on the server.
    const agent = new Agent({ connect: { ca: readFileSync(stack.info.pki.caCert) } });
    try {
      const answer = await request(`${base}/api/session`, {
        dispatcher: agent,
        headers: { cookie: `virtfleet-session=${cookie!.value}` },
      });
      await answer.body.dump();
      expect(answer.statusCode).toBe(401);
    } finally {
      await agent.close();
    }
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(pageErrors).toEqual([]);
    await context.close();
  }, 30_000);
});
