// A real browser for the web console's tests: Debian's `chromium` (hack/setup.sh installs it)
// driven by playwright-core. Playwright's own browser download cannot work here, so there is no
// fallback: without the package the test fails, naming it.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot } from '../../src/devstack/binaries.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/lib/chromium/chromium'];

export function chromiumPath(): string {
  const found = [process.env.VIRTFLEET_CHROMIUM, ...CANDIDATES].find((path) => path && existsSync(path));
  if (!found)
    throw new Error(
      "no chromium: install Debian's chromium package (hack/setup.sh does, as root), or set VIRTFLEET_CHROMIUM",
    );
  return found;
}

/** One headless chromium; each test user gets their own context (cookies) in it. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // As root (CI, the rig machines) chromium refuses to start with its sandbox.
    args: [
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-dev-shm-usage',
      // Loopback only: no phoning home for updates, safe browsing or field trials.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** Where the tests write screenshots (git-ignored). */
export function screenshotDir(suite: string): string {
  const dir = join(repoRoot(), 'test-output', 'screenshots', suite);
  mkdirSync(dir, { recursive: true });
  return dir;
}
