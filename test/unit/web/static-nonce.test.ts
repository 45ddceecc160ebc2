// The page's style nonce (src/web/static.ts, src/web/http.ts): index.html is served with a new
// nonce each time, the same one in the CSP header and in the meta element the app reads
// (web/src/console/csp.ts); scripts stay 'self' only; other files keep the nonce-less policy.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StaticApp } from '../../../src/web/static.js';

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-web-static-'));
let server: Server;
let base = '';

beforeAll(async () => {
  mkdirSync(join(dir, 'assets'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html>\n<html>\n  <head>\n    <title>t</title>\n  </head>\n</html>\n',
  );
  writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1);\n');
  const app = new StaticApp(dir);
  server = createServer((request, response) => app.serve(new URL(request.url ?? '/', 'http://x').pathname, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function page(path: string) {
  const response = await fetch(base + path);
  return { csp: response.headers.get('content-security-policy') ?? '', text: await response.text(), response };
}

describe('the page style nonce', () => {
  it('puts a new nonce in the CSP header and the meta element of each index.html, scripts still self only', async () => {
    const one = await page('/');
    const two = await page('/vms/default/demo'); // an app route: index.html too
    const nonceOf = (csp: string) => /style-src 'self' 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    const first = nonceOf(one.csp);
    const second = nonceOf(two.csp);
    expect(first).toHaveLength(24);
    expect(second).toHaveLength(24);
    expect(first).not.toBe(second);
    expect(one.text).toContain(`<meta name="csp-nonce" content="${first}" />`);
    expect(two.text).toContain(`<meta name="csp-nonce" content="${second}" />`);
    for (const csp of [one.csp, two.csp]) {
      expect(csp).toMatch(/script-src 'self';/);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    }
    expect(one.response.headers.get('cache-control')).toBe('no-store');
  });

  it('serves other files without a nonce', async () => {
    const script = await page('/assets/app.js');
    expect(script.csp).toMatch(/style-src 'self';/);
    expect(script.csp).not.toMatch(/nonce/);
  });
});
