// The web console's pages beyond the first slice, in chromium against a real control plane with
// the controllers running in-process over simulated hosts (libvirt's test driver), so every
// action the page asks for is taken up by the real controller and its outcome and Events come
// back into the page: restart, pause, unpause, migrate to a chosen host (the test driver cannot
// migrate: the controller taking it up is the outcome shown), delete with confirmation, bulk stop, the Hosts
// page's maintenance toggle, the install profiles' rendered Kickstart, the YAML tab with its
// dry run; and every page at phone and laptop width, light and dark, without horizontal
// overflow and without serious axe-core findings.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../../src/controllers/resources.js';
import { ACTION_ANNOTATION, MIGRATE_TO_ANNOTATION } from '../../../src/controllers/vm-actions.js';
import { screenshotDir } from '../../harness/browser.js';
import type { WebTestController } from './controller.js';
import { ADMIN_HASH, buildWorld, NS, POOL, ROOT_PASSWORD, running as running_, tearDownWorld } from './pages-world.js';
import { axeViolations, WebStack } from './stack.js';

const CONTEXT = { ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1280, height: 800 } };

const stack = new WebStack();
const shots = screenshotDir('web-console');
let controller: WebTestController;
let tokens = { admin: '', viewer: '' };
let adminContext: BrowserContext;
let page: Page;

const getVm = (name: string) => stack.admin.get<VmObject>(VIRTUAL_MACHINE, NS, name);
const getPool = () => stack.admin.get<PoolObject>(HOST_POOL, undefined, POOL);
const running = (name: string) => running_(stack, name);

beforeAll(async () => {
  await stack.start();
  ({ controller, tokens } = await buildWorld(stack));
  adminContext = await stack.browser.newContext({ ...CONTEXT });
  page = await stack.login(adminContext, tokens.admin);
}, 240_000);

afterAll(async () => {
  await adminContext?.close();
  if (controller) await tearDownWorld(stack, controller);
  await stack.stop();
}, 120_000);

/** Waits until the YAML tab's text holds `text` (it is loaded after the tab opens). */
function yamlHolds(on: Page, text: string) {
  return on.waitForFunction(
    (wanted) => ((globalThis as any).document.querySelector('#vm-yaml')?.value as string | undefined)?.includes(wanted),
    text,
  );
}

/** The outcome line of the action buttons once it matches `pattern`. */
async function outcome(pattern: RegExp): Promise<string> {
  const line = page.locator('.actions [data-outcome]', { hasText: pattern });
  await line.waitFor();
  return (await line.textContent()) ?? '';
}

describe('VM detail actions', () => {
  it('restarts, pauses and unpauses a VM, each outcome and its Event shown in the page', async () => {
    await page.goto(`${stack.base}/vms/${NS}/runner`);
    await page.locator('[data-allowed="true"]').first().waitFor();
    await page.getByRole('button', { name: 'restart runner', exact: true }).click();
    expect(await outcome(/^restart: Succeeded/)).toMatch(/^restart: Succeeded/);
    await page.locator('table.events tr', { hasText: 'Restarted' }).first().waitFor();
    await page.getByRole('button', { name: 'pause runner', exact: true }).click();
    await outcome(/^pause: Succeeded/);
    await page.locator('[data-field="phase"]', { hasText: 'Paused' }).waitFor();
    await page.locator('table.events tr', { hasText: 'Paused' }).first().waitFor();
    await page.getByRole('button', { name: 'unpause runner', exact: true }).click();
    await outcome(/^unpause: Succeeded/);
    await page.locator('[data-field="phase"]', { hasText: 'Running' }).waitFor();
  });

  it('migrates to the host chosen among the pool’s ready hosts, and shows the outcome', async () => {
    await page.goto(`${stack.base}/vms/${NS}/third`);
    await page.locator('[data-allowed="true"]').first().waitFor();
    const before = await getVm('third');
    const other = before.status!.host === 'h1' ? 'h2' : 'h1';
    const choice = page.getByLabel('to host');
    // The VM's own host is not offered; the other ready host is.
    await choice.locator(`option[value="${other}"]`).waitFor({ state: 'attached' });
    expect(await choice.locator('option').allTextContents()).toEqual(["the scheduler's choice", other]);
    await choice.selectOption(other);
    await page.getByRole('button', { name: 'migrate third' }).click();
    // Taken up by the controller (libvirt's test driver cannot migrate: the attempt fails and is retried).
    const text = await outcome(/^migrate to h[12]: /);
    expect(text).toContain(`migrate to ${other}: `);
    const annotations = (await getVm('third')).metadata.annotations ?? {};
    expect(annotations[ACTION_ANNOTATION]).toBe('migrate');
    expect(annotations[MIGRATE_TO_ANNOTATION]).toBe(other);
    await page.locator('table.events tr', { hasText: 'MigrationStarted' }).first().waitFor();
    await page.screenshot({ path: join(shots, 'vm-detail-actions.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
  });

  it('checks edited YAML with the validator and a dry run, shows field errors, and applies only a good edit', async () => {
    await page.goto(`${stack.base}/vms/${NS}/runner`);
    await page.getByRole('tab', { name: 'YAML' }).click();
    const editor = page.getByLabel('VirtualMachine runner as YAML');
    await yamlHolds(page, 'memory: 128Mi');
    const yaml = await editor.inputValue();
    expect(yaml).not.toContain('managedFields');
    expect(yaml).not.toContain('status:');
    await editor.fill(yaml.replace('memory: 128Mi', 'memory: lots'));
    await page.getByRole('button', { name: 'Apply' }).click();
    const problem = page.locator('[data-yaml-result="problems"] li[data-field="spec.memory"]');
    await problem.waitFor();
    expect(await problem.textContent()).toMatch(/^spec\.memory: /);
    expect((await getVm('runner')).spec.memory).toBe('128Mi');
    await page.screenshot({ path: join(shots, 'vm-yaml-error.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await editor.fill(yaml.replace('memory: 128Mi', 'memory: 192Mi'));
    await page.getByRole('button', { name: 'Check (dry run)' }).click();
    await page.locator('[data-yaml-result="ok"]', { hasText: 'the API server accepts it (dry run)' }).waitFor();
    expect((await getVm('runner')).spec.memory).toBe('128Mi');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('[data-yaml-result="applied"]').waitFor();
    expect((await getVm('runner')).spec.memory).toBe('192Mi');
    // Someone else changes the VM while the text is open: the edit is refused with the API
    // server's conflict, not written over their change.
    await yamlHolds(page, 'memory: 192Mi');
    await stack.admin.patch(VIRTUAL_MACHINE, NS, 'runner', { metadata: { labels: { 'changed-by': 'someone-else' } } });
    await editor.fill((await editor.inputValue()).replace('memory: 192Mi', 'memory: 256Mi'));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('[data-yaml-result="problems"]', { hasText: /has been modified/ }).waitFor();
    expect((await getVm('runner')).spec.memory).toBe('192Mi');
    await page.getByRole('tab', { name: 'Overview' }).click();
  });

  it('deletes a VM only after the confirmation, and the page says it is gone', async () => {
    await page.goto(`${stack.base}/vms/${NS}/third`);
    await page.getByRole('button', { name: 'delete', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete VM third?' });
    await dialog.waitFor();
    await page.screenshot({ path: join(shots, 'vm-delete-confirm.png') });
    expect(await axeViolations(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await getVm('third')).metadata.deletionTimestamp).toBeUndefined();
    await page.getByRole('button', { name: 'delete', exact: true }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText(`VirtualMachine third does not exist in namespace ${NS}.`).waitFor({ timeout: 60_000 });
  });
});

describe('VMs page bulk actions', () => {
  it('stops the selected rows, and each row follows to Stopped', async () => {
    await page.goto(`${stack.base}/vms?namespace=${NS}`);
    for (const name of ['runner', 'second']) await page.getByLabel(`select ${name}`).check();
    await page.getByText('2 selected').waitFor();
    await page.getByRole('button', { name: 'Stop selected' }).click();
    await page.locator('[data-bulk-outcome]', { hasText: 'asked 2 of 2 VMs to stop' }).waitFor();
    for (const name of ['runner', 'second']) {
      expect((await getVm(name)).metadata.annotations?.[ACTION_ANNOTATION]).toBe('stop');
      await page.locator(`[data-vm="${NS}/${name}"] [data-phase]`, { hasText: 'Stopped' }).waitFor();
    }
    await page.screenshot({ path: join(shots, 'vms-bulk.png') });
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Start selected' }).click();
    for (const name of ['runner', 'second'])
      await page.locator(`[data-vm="${NS}/${name}"] [data-phase]`, { hasText: 'Running' }).waitFor();
  });
});

describe('Hosts page', () => {
  it("shows each host's facts and heartbeat, and puts a host into maintenance after listing the VMs that will move", async () => {
    const runner = await running('runner');
    const host = runner.status!.host!;
    await page.goto(`${stack.base}/hosts`);
    const card = page.locator(`[data-host="${host}"]`);
    await card.locator('[data-ready="true"]').waitFor();
    expect(await card.locator('[data-field="heartbeat"]').textContent()).toMatch(/ago$/);
    expect(await card.locator('[data-field="fencing"]').textContent()).toBe('none configured; not fenced');
    expect(await card.textContent()).toContain('test:///');
    await page.screenshot({ path: join(shots, 'hosts.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await card.getByRole('button', { name: 'Start maintenance' }).click();
    const dialog = page.getByRole('dialog', { name: `Put ${host} into maintenance?` });
    await dialog.locator('[data-migrating] li', { hasText: `${NS}/runner` }).waitFor();
    const moving = await dialog.locator('[data-migrating] li').allTextContents();
    const placed = (await stack.admin.list<VmObject>(VIRTUAL_MACHINE, { namespace: NS })).items
      .filter((item) => item.status?.host === host)
      .map((item) => `${NS}/${item.metadata.name}`)
      .sort();
    expect(moving).toEqual(placed);
    await page.screenshot({ path: join(shots, 'hosts-maintenance-confirm.png') });
    await dialog.getByRole('button', { name: 'Start maintenance' }).click();
    // The outcome, or the refusal in words: the test says which it got.
    await card.locator('[data-outcome], [role="alert"]').first().waitFor();
    expect(await card.locator('[role="alert"]').allTextContents()).toEqual([]);
    await card.locator('[data-outcome]', { hasText: 'maintenance set' }).waitFor();
    const pool = await getPool();
    expect(pool.spec.hosts.find((h) => h.name === host)?.maintenance).toBe(true);
    expect(pool.spec.hosts.find((h) => h.name !== host)?.maintenance).not.toBe(true);
    await page.locator('[data-field="maintenance-condition"]', { hasText: host }).waitFor();
    await card.getByRole('button', { name: 'End maintenance' }).click();
    await page
      .getByRole('dialog', { name: `End maintenance of ${host}?` })
      .getByRole('button', { name: 'End maintenance' })
      .click();
    await card.getByRole('button', { name: 'Start maintenance' }).waitFor();
    expect((await getPool()).spec.hosts.find((h) => h.name === host)?.maintenance).toBe(false);
    // Bad requests are refused naming the field, before anything is patched.
    const bad = await page.evaluate(
      async ({ ns, pool }) => {
        const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
        const post = async (path: string, body: unknown) => {
          const response = await fetch(path, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
            body: JSON.stringify(body),
          });
          return `${response.status} ${((await response.json()) as { message: string }).message}`;
        };
        return [
          await post(`/api/hostpools/${pool}/hosts/nope/maintenance`, { maintenance: true }),
          await post(`/api/hostpools/${pool}/hosts/h1/maintenance`, { maintenance: 'yes' }),
          await post(`/api/namespaces/${ns}/virtualmachines/runner/action`, { action: 'stop', to: 'h2' }),
          await post(`/api/namespaces/${ns}/virtualmachines/runner/action`, { action: 'migrate', to: 'Not_A_Host' }),
        ];
      },
      { ns: NS, pool: POOL },
    );
    expect(bad).toEqual([
      `404 host nope is not in HostPool ${POOL} (hosts: h1, h2)`,
      '400 maintenance: true or false',
      "400 to: only with action migrate, a host name of the VM's HostPool",
      expect.stringMatching(/^400 to: "Not_A_Host" /),
    ]);
    expect((await getVm('runner')).metadata.annotations?.[ACTION_ANNOTATION]).not.toBe('migrate');
  });
});

describe('Install profiles page', () => {
  it('shows validity and renders the Kickstart with password hashes only', async () => {
    await page.goto(`${stack.base}/profiles?namespace=${NS}`);
    const profile = page.locator(`[data-profile="${NS}/rocky"]`);
    await profile.locator('[data-field="valid"]', { hasText: /^True/ }).waitFor();
    await profile.getByRole('button', { name: 'Show Kickstart of rocky' }).click();
    const text = (await profile.locator('[data-kickstart="text"]').textContent()) ?? '';
    expect(text).toMatch(/^rootpw --iscrypted \$6\$/m);
    expect(text).toContain(ADMIN_HASH);
    expect(text).not.toContain(ROOT_PASSWORD);
    expect(await page.content()).not.toContain(ROOT_PASSWORD);
    await page.screenshot({ path: join(shots, 'profiles.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
  });
});

describe('a view-only person', () => {
  it('sees no maintenance, YAML apply or bulk buttons, and the validity but not the Kickstart', async () => {
    const context = await stack.browser.newContext({ ...CONTEXT });
    const viewer = await stack.login(context, tokens.viewer);
    await viewer.goto(`${stack.base}/hosts`);
    await viewer.locator('[data-host="h1"] [data-field="heartbeat"]').waitFor();
    expect(await viewer.getByRole('button', { name: /maintenance/ }).count()).toBe(0);
    // A forged maintenance request with the session's own CSRF token: the API server refuses it.
    const forged = await viewer.evaluate(async (pool) => {
      const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
      const response = await fetch(`/api/hostpools/${pool}/hosts/h1/maintenance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ maintenance: true }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    }, POOL);
    expect(forged.status).toBe(403);
    expect(forged.body.message).toBe(`you may not patch hostpools "${POOL}"`);
    expect((await getPool()).spec.hosts.some((h) => h.maintenance)).toBe(false);
    await viewer.goto(`${stack.base}/vms?namespace=${NS}`);
    await viewer.locator(`[data-vm="${NS}/runner"]`).waitFor();
    await viewer.locator('[data-allowed="false"]').first().waitFor({ state: 'attached' });
    expect(await viewer.locator('[data-bulk]').count()).toBe(0);
    await viewer.goto(`${stack.base}/vms/${NS}/runner`);
    await viewer.getByRole('tab', { name: 'YAML' }).click();
    await yamlHolds(viewer, 'name: runner');
    expect(await viewer.getByRole('button', { name: 'Apply' }).count()).toBe(0);
    expect(await viewer.getByRole('button', { name: 'delete', exact: true }).count()).toBe(0);
    await viewer.goto(`${stack.base}/profiles?namespace=${NS}`);
    const profile = viewer.locator(`[data-profile="${NS}/rocky"]`);
    await profile.locator('[data-field="valid"]', { hasText: /^True/ }).waitFor();
    await profile.getByRole('button', { name: 'Show Kickstart of rocky' }).click();
    const problems = profile.locator('[data-kickstart="problems"]');
    await problems.waitFor();
    expect(await problems.textContent()).toMatch(/you may not get secrets in namespace web-run/);
    expect(await profile.locator('[data-kickstart="text"]').count()).toBe(0);
    await viewer.screenshot({ path: join(shots, 'profiles-view-only.png'), fullPage: true });
    await context.close();
  });
});

describe('layout', () => {
  const PAGES = [
    '/fleet',
    `/vms?namespace=${NS}`,
    `/vms/${NS}/runner`,
    '/hosts',
    `/profiles?namespace=${NS}`,
    `/vms/new?namespace=${NS}`,
  ];
  const SIZES = [
    { name: 'phone', width: 390, height: 844 },
    { name: 'laptop', width: 1280, height: 800 },
  ];
  it.each(['light', 'dark'] as const)(
    'has no horizontal overflow on any page at phone and laptop width (%s)',
    async (scheme) => {
      const context = await stack.browser.newContext({ ...CONTEXT, colorScheme: scheme });
      const viewer = await stack.login(context, tokens.admin);
      const overflowing: string[] = [];
      for (const size of SIZES) {
        await viewer.setViewportSize({ width: size.width, height: size.height });
        for (const path of PAGES) {
          await viewer.goto(stack.base + path);
          await viewer.locator('.live-state.live').first().waitFor();
          const widths = await viewer.evaluate(() => {
            const root = (globalThis as any).document.documentElement as { scrollWidth: number; clientWidth: number };
            return { scroll: root.scrollWidth, client: root.clientWidth };
          });
          if (widths.scroll > widths.client)
            overflowing.push(`${path} at ${size.name}: ${widths.scroll} > ${widths.client}`);
          const slug =
            path
              .replace(/\?.*$/, '')
              .replace(/[^a-z0-9]+/gi, '-')
              .replace(/^-|-$/g, '') || 'root';
          await viewer.screenshot({ path: join(shots, `layout-${size.name}-${scheme}-${slug}.png`) });
          // Colour contrast differs per scheme: axe checks each.
          const found = await axeViolations(viewer);
          if (found.length) overflowing.push(`${path} at ${size.name} (axe): ${found.join('; ')}`);
        }
      }
      expect(overflowing).toEqual([]);
      await context.close();
      expect(stack.pageErrors).toEqual([]);
    },
    240_000,
  );
});
