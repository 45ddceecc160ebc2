// The web console's test stack: a real control plane with the CRDs, `virtfleet api --web-port`
// running as its ServiceAccount with deploy/'s RBAC, one chromium; and what the page tests do
// with it: log a person in, check the page with axe-core, collect the page's own errors.
import { expect } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { repoRoot } from '../../../src/devstack/binaries.js';
import { ControlPlane } from '../../../src/devstack/controlplane.js';
import { installCrds } from '../../../src/devstack/crds.js';
import { freePort } from '../../../src/devstack/ports.js';
import { KubeClient } from '../../../src/runtime/kube-client.js';
import { defaultAppDir } from '../../../src/web/static.js';
import { apiServiceAccountKubeconfig, ApiServerProcess } from '../../harness/api-server.js';
import { launchBrowser } from '../../harness/browser.js';
import { kubectl } from '../../harness/service-accounts.js';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

export class WebStack {
  readonly dir = mkdtempSync(join(tmpdir(), 'virtfleet-web-it-'));
  readonly plane = new ControlPlane({ stateDir: join(this.dir, 'control-plane'), unsafeNoFsync: true });
  /** Errors the pages threw or logged: a test ends by expecting none. */
  readonly pageErrors: string[] = [];
  admin!: KubeClient;
  adminConfig!: KubeConfig;
  base = '';
  browser!: Browser;
  run!: (args: string[]) => Promise<string>;
  /** The control plane's CA (it signed the console's serving certificate too). */
  caCert = '';
  private api: ApiServerProcess | undefined;

  async start(): Promise<void> {
    if (!existsSync(join(defaultAppDir(), 'index.html')))
      throw new Error(`the web app is not built (${defaultAppDir()}): run \`make build\` (or npm run build) first`);
    const info = await this.plane.start();
    await installCrds(info.binaries.kubectl, info.kubeconfig, repoRoot());
    this.adminConfig = new KubeConfig();
    this.adminConfig.loadFromFile(info.kubeconfig);
    this.admin = new KubeClient(this.adminConfig);
    this.run = (args) => kubectl(info.binaries.kubectl, info.kubeconfig, args);
    this.caCert = info.pki.caCert;
    const own = await apiServiceAccountKubeconfig(
      this.run,
      info.server,
      info.pki.caCert,
      join(this.dir, 'virtfleet-api.kubeconfig'),
    );
    const webPort = await freePort();
    this.api = new ApiServerProcess(own, info.pki, join(this.dir, 'api.log'), ['--web-port', String(webPort)]);
    await this.api.start(this.admin);
    this.base = `https://127.0.0.1:${webPort}`;
    await this.run(['apply', '--server-side', '-f', join(repoRoot(), 'deploy/base/user-roles.yaml')]);
    this.browser = await launchBrowser();
  }

  async stop(): Promise<void> {
    await this.browser?.close();
    await this.api?.stop();
    await this.plane.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A page of `context`, logged in with `token`, on the Fleet page. */
  async login(context: BrowserContext, token: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => this.pageErrors.push(`${error.name}: ${error.message}`));
    page.on('console', (message) => {
      // The browser logs every 4xx it got (401 before login, refusals the tests provoke).
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
        this.pageErrors.push(message.text());
    });
    await page.goto(this.base + '/');
    await page.getByLabel('Bearer token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    return page;
  }
}

/** axe-core's serious and critical findings on the page as it is: `rule: element, …`. */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const { checked, found } = await page.evaluate(async () => {
    const axe = (globalThis as any).axe;
    const result = await axe.run({ resultTypes: ['violations'] });
    const violations = result.violations as { id: string; impact: string; nodes: { target: string[] }[] }[];
    return {
      checked: (result.passes as unknown[]).length,
      found: violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    };
  });
  // No rule passing would mean axe looked at nothing: that is no proof of anything.
  expect(checked).toBeGreaterThan(0);
  return found;
}

/** Polls `check` (an API read) until it returns a value; fails naming `what` after `ms`. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  for (const deadline = Date.now() + ms; ;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${ms / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
