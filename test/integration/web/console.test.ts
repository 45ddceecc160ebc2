// The web console (src/web, web/) in a real browser against a real control plane: `virtfleet
// api --web-port` started as the console tests start it (test/harness/api-server.ts), people
// logging in with ServiceAccount tokens, RBAC deciding. One chromium, one context per person.
//
// The session and CSRF rules and the SSE resume are checked from Node first (exact headers and
// status codes), then the pages: live rows, an action, a view-only person, HTML as text, logout.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { Agent, request } from 'undici';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { ACTION_ANNOTATION, ACTION_ID_ANNOTATION } from '../../../src/controllers/vm-actions.js';
import type { KubeClient, KubeObject } from '../../../src/runtime/kube-client.js';
import { screenshotDir } from '../../harness/browser.js';
import { serviceAccountToken } from '../../harness/service-accounts.js';
import { axeViolations, WebStack } from './stack.js';

const NS = 'web-vms';
const PEOPLE = 'web-people';
// bypassCSP: axe-core is injected as an inline script, which the console's CSP forbids; it also
// means the HTML-as-text check below holds by escaping alone, not by the CSP blocking a handler.
const CONTEXT = { ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1280, height: 800 } };
const HTML = '<img src=x onerror="window.__pwned=1"><b>bold</b> & "quotes"';

const stack = new WebStack();
const shots = screenshotDir('web-console');
let admin: KubeClient;
let base: string;
let agent: Agent;
const tokens = { admin: '', viewer: '' };

function vm(name: string, annotations: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: NS, labels: { app: 'web-test' }, annotations },
    spec: { hostPoolRef: { name: 'nowhere' }, memory: '128Mi', kernelBoot: { kernel: '/boot/vmlinuz' } },
  };
}

/** A request to the console's port from Node (the test's own client, trusting the test CA). */
async function call(
  method: 'GET' | 'POST',
  path: string,
  options: { cookie?: string; headers?: Record<string, string>; body?: unknown } = {},
) {
  const response = await request(base + path, {
    method,
    dispatcher: agent,
    headers: {
      ...(options.cookie ? { cookie: options.cookie } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    body: (text && String(response.headers['content-type']).startsWith('application/json')
      ? JSON.parse(text)
      : {}) as Record<string, any>,
  };
}

async function loginFromNode(token: string): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const answer = await call('POST', '/api/login', { body: { token } });
  expect(answer.status).toBe(200);
  const setCookie = String(answer.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, csrf: answer.body.csrfToken as string, setCookie };
}

/** The SSE events of a watch until `until` says stop; the stream is closed then. */
async function sseEvents(
  path: string,
  cookie: string,
  until: (events: { event: string; id?: string; data: any }[]) => boolean,
  lastEventId?: string,
) {
  const controller = new AbortController();
  const response = await request(base + path, {
    dispatcher: agent,
    headers: { cookie, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
    signal: controller.signal,
  });
  expect(response.statusCode).toBe(200);
  const events: { event: string; id?: string; data: any }[] = [];
  let buffered = '';
  try {
    for await (const chunk of response.body) {
      buffered += (chunk as Buffer).toString();
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => line && !line.startsWith(':'))
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
        ) as Record<string, string>;
        if (fields.event) events.push({ event: fields.event, id: fields.id, data: JSON.parse(fields.data ?? 'null') });
        if (until(events)) return events;
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}

const pageErrors = stack.pageErrors;
const loginPage = (context: BrowserContext, token: string): Promise<Page> => stack.login(context, token);

beforeAll(async () => {
  await stack.start();
  admin = stack.admin;
  base = stack.base;
  agent = new Agent({ connect: { ca: readFileSync(stack.caCert) } });
  const run = stack.run;
  await run(['create', 'namespace', NS]);
  // An admin of every namespace (VMs, pools; Events through Kubernetes' own view role) and a
  // person who may only look, in one namespace.
  // Kubernetes' view role is aggregated by kube-controller-manager, which the test control
  // plane does not run: Events are granted by a role of their own.
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
      NS,
      `--clusterrole=${role}`,
      `--serviceaccount=${PEOPLE}:web-viewer`,
    ]);
  await admin.create(VIRTUAL_MACHINE, vm('alpha', { 'example.com/note': HTML }));
}, 240_000);

afterAll(async () => {
  await agent?.close();
  await stack.stop();
}, 60_000);

describe('web console sessions', () => {
  it('refuses a token the API server does not accept, naming TokenReview', async () => {
    const answer = await call('POST', '/api/login', { body: { token: 'not-a-token' } });
    expect(answer.status).toBe(401);
    expect(answer.body.message).toMatch(/the token was not accepted by the Kubernetes API/);
    expect((await call('GET', '/api/session')).status).toBe(401);
  });

  it('keeps the token server-side behind an HttpOnly, Secure, SameSite=Strict cookie', async () => {
    const { cookie, setCookie } = await loginFromNode(tokens.admin);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/Secure/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toContain(tokens.admin);
    const session = await call('GET', '/api/session', { cookie });
    expect(session.status).toBe(200);
    expect(session.body.user.name).toBe(`system:serviceaccount:${PEOPLE}:web-admin`);
    expect(JSON.stringify(session.body)).not.toContain(tokens.admin);
    // The page itself: scripts and styles only from the console, never framed.
    const index = await call('GET', '/vms');
    expect(index.headers['content-security-policy']).toMatch(/script-src 'self';.*frame-ancestors 'none'/);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
  });

  it('refuses a write without the CSRF header, or from another origin, before it reaches the VM', async () => {
    const { cookie, csrf } = await loginFromNode(tokens.admin);
    const path = `/api/namespaces/${NS}/virtualmachines/alpha/action`;
    const bare = await call('POST', path, { cookie, body: { action: 'stop' } });
    expect(bare.status).toBe(403);
    expect(bare.body.message).toMatch(/missing or wrong x-csrf-token header/);
    const foreign = await call('POST', path, {
      cookie,
      body: { action: 'stop' },
      headers: { 'x-csrf-token': csrf, origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.message).toMatch(/from https:\/\/evil.example is not accepted/);
    const alpha = await admin.get(VIRTUAL_MACHINE, NS, 'alpha');
    expect(alpha.metadata?.annotations?.[ACTION_ANNOTATION]).toBeUndefined();
    const unknown = await call('POST', path, {
      cookie,
      body: { action: 'explode' },
      headers: { 'x-csrf-token': csrf },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/^action: one of start, stop/);
  });

  it('relays a watch as SSE on one open stream, and resumes from Last-Event-ID without a new snapshot', async () => {
    const { cookie } = await loginFromNode(tokens.admin);
    const path = `/api/watch/virtualmachines?namespace=${NS}`;
    let created: Promise<unknown> | undefined;
    const first = await sseEvents(path, cookie, (events) => {
      // Once live, a VM created now must arrive on this same stream.
      if (!created && events.some((e) => e.event === 'status'))
        created = admin.create(VIRTUAL_MACHINE, vm('same-stream'));
      return events.some((e) => e.event === 'change');
    });
    await created;
    const snapshot = first.find((e) => e.event === 'snapshot')!;
    expect(snapshot.data.items.map((item: KubeObject) => item.metadata?.name)).toEqual(['alpha']);
    expect(snapshot.id).toMatch(/^\d+$/);
    expect(snapshot.data.items[0].metadata.managedFields).toBeUndefined();
    expect(first.map((e) => e.event)).toEqual(['snapshot', 'status', 'change']);
    expect(first[2]!.data).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'same-stream' } } });
    // Created while the page was away: from the snapshot's version, both come as changes, in order.
    await admin.create(VIRTUAL_MACHINE, vm('resumed'));
    const resumed = await sseEvents(
      path,
      cookie,
      (events) => events.some((e) => e.event === 'change' && e.data.object.metadata.name === 'resumed'),
      snapshot.id,
    );
    expect(resumed.map((e) => e.event)).not.toContain('snapshot');
    const changes = resumed.filter((e) => e.event === 'change');
    expect(changes.map((e) => [e.data.type, e.data.object.metadata.name])).toEqual([
      ['ADDED', 'same-stream'],
      ['ADDED', 'resumed'],
    ]);
    await admin.delete(VIRTUAL_MACHINE, NS, 'same-stream');
    await admin.delete(VIRTUAL_MACHINE, NS, 'resumed');
  });
});

describe('web console pages in chromium', () => {
  it('logs an admin in, shows new VMs and status changes live, and stops a VM through the page', async () => {
    const context = await stack.browser.newContext({ ...CONTEXT });
    const page = await loginPage(context, tokens.admin);
    await page.screenshot({ path: join(shots, 'fleet.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'VMs' }).click();
    await page.locator(`[data-vm="${NS}/alpha"]`).waitFor();
    // A marker that a reload would wipe: the rows below must come without one.
    await page.evaluate(() => ((globalThis as any).__noReload = true));
    await admin.create(VIRTUAL_MACHINE, vm('beta'));
    const beta = page.locator(`[data-vm="${NS}/beta"]`);
    await beta.waitFor();
    await admin.patch(
      VIRTUAL_MACHINE,
      NS,
      'beta',
      { status: { phase: 'Running', host: 'h1' } },
      { subresource: 'status' },
    );
    await beta.locator('[data-phase]', { hasText: 'Running' }).waitFor();
    await beta.locator('[data-allowed="true"]').waitFor();
    await beta.getByRole('button', { name: 'stop beta' }).click();
    for (const deadline = Date.now() + 30_000; ;) {
      const current = await admin.get(VIRTUAL_MACHINE, NS, 'beta');
      if (current.metadata?.annotations?.[ACTION_ANNOTATION] === 'stop') {
        expect(current.metadata.annotations[ACTION_ID_ANNOTATION]).toMatch(/^\d{4}-\d\d-\d\dT.*-[0-9a-f]{6}$/);
        break;
      }
      if (Date.now() > deadline) throw new Error('the stop from the page did not reach the VM within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await page.evaluate(() => (globalThis as any).__noReload)).toBe(true);
    await page.screenshot({ path: join(shots, 'vms.png') });
    expect(await axeViolations(page)).toEqual([]);

    // An annotation full of HTML is text on the detail page; nothing of it runs or renders.
    await beta.getByRole('link', { name: 'beta' }).waitFor();
    await page.goto(`${base}/vms/${NS}/alpha`);
    const note = page.locator('dd', { hasText: 'window.__pwned' });
    await note.waitFor();
    expect(await note.textContent()).toBe(HTML);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.locator('main b', { hasText: 'bold' }).count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined();
    await page.locator('[data-allowed="true"]').waitFor();
    await page.screenshot({ path: join(shots, 'vm-detail.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    // Logout ends the session on the server: the old cookie is worth nothing afterwards.
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'virtfleet-session');
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Bearer token').waitFor();
    expect((await call('GET', '/api/session', { cookie: `virtfleet-session=${cookie!.value}` })).status).toBe(401);
    await page.screenshot({ path: join(shots, 'login.png') });
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
    expect(pageErrors).toEqual([]);
  });

  it("shows a live migration's progress from status.migration as it moves, and not once it is gone", async () => {
    const context = await stack.browser.newContext({ ...CONTEXT });
    const page = await loginPage(context, tokens.admin);
    await admin.create(VIRTUAL_MACHINE, vm('mover'));
    const migration = (remaining: number) => ({
      source: 'h1',
      target: 'h2',
      started: new Date().toISOString(),
      storage: 'Copied',
      dataTotalBytes: 512 * 2 ** 20,
      dataRemainingBytes: remaining * 2 ** 20,
      diskTotalBytes: 256 * 2 ** 20,
      diskRemainingBytes: Math.min(remaining, 256) * 2 ** 20,
    });
    const setStatus = (status: Record<string, unknown>) =>
      admin.patch(VIRTUAL_MACHINE, NS, 'mover', { status }, { subresource: 'status' });
    await setStatus({ phase: 'Migrating', host: 'h1', migration: migration(384) });
    await page.goto(`${base}/vms/${NS}/mover`);
    const sent = page.locator('[data-progress="sent"]');
    await sent.filter({ hasText: '128 MiB of 512 MiB' }).waitFor();
    expect(await page.locator('[data-progress="disks copied"]').textContent()).toBe('0 MiB of 256 MiB');
    expect(await page.getByRole('region', { name: 'migration progress' }).textContent()).toMatch(
      /from h1 to h2; disks: Copied/,
    );
    await setStatus({ migration: migration(64) });
    await sent.filter({ hasText: '448 MiB of 512 MiB' }).waitFor();
    expect(await page.locator('[data-progress="disks copied"]').textContent()).toBe('192 MiB of 256 MiB');
    await page.screenshot({ path: join(shots, 'migration-progress.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await setStatus({ phase: 'Running', host: 'h2', migration: null });
    await page.locator('[data-field="phase"]', { hasText: 'Running' }).waitFor();
    expect(await page.getByRole('region', { name: 'migration progress' }).count()).toBe(0);
    await context.close();
    expect(pageErrors).toEqual([]);
  });

  it('shows a view-only person no action buttons, and the API server 403 for a forged write', async () => {
    const context = await stack.browser.newContext({ ...CONTEXT });
    const page = await loginPage(context, tokens.viewer);
    await page.goto(`${base}/vms`);
    const refusal = page.getByRole('alert').filter({ hasText: 'you may not list virtualmachines in all namespaces' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/Kubernetes API: .*cannot list resource "virtualmachines"/);
    await page.screenshot({ path: join(shots, 'vms-forbidden.png') });
    await page.getByLabel('Namespace').fill(NS);
    await page.getByRole('button', { name: 'Show' }).click();
    const alpha = page.locator(`[data-vm="${NS}/alpha"]`);
    await alpha.locator('[data-allowed="false"]').waitFor({ state: 'attached' });
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await page.goto(`${base}/vms/${NS}/alpha`);
    await page.locator('[data-allowed="false"]').waitFor({ state: 'attached' });
    expect(await page.locator('button[data-action]').count()).toBe(0);
    // The session's own CSRF token: the console lets the request through, the API server refuses it.
    const forged = await page.evaluate(async (ns) => {
      const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
      const response = await fetch(`/api/namespaces/${ns}/virtualmachines/alpha/action`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ action: 'stop' }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    }, NS);
    expect(forged.status).toBe(403);
    expect(forged.body.message).toBe(`you may not patch virtualmachines "alpha" in namespace ${NS}`);
    expect(forged.body.apiMessage).toMatch(
      new RegExp(`"system:serviceaccount:${PEOPLE}:web-viewer" cannot patch resource "virtualmachines"`),
    );
    const alphaNow = await admin.get(VIRTUAL_MACHINE, NS, 'alpha');
    expect(alphaNow.metadata?.annotations?.[ACTION_ANNOTATION]).toBeUndefined();
    await page.screenshot({ path: join(shots, 'vm-detail-view-only.png'), fullPage: true });
    await context.close();
    expect(pageErrors).toEqual([]);
  });
});
