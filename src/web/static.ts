// The built single-page app (web/, built by Vite into dist/web-app), read once at start and
// served from memory. Any path that is not a file is the app's own route: index.html.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contentSecurityPolicy, SECURITY_HEADERS } from './http.js';

/** Where index.html gets the page's style nonce: a meta element the app reads (web/src/console/csp.ts). */
const NONCE_META = '<meta name="csp-nonce" content="%NONCE%" />';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

interface StaticFile {
  body: Buffer;
  type: string;
  /** Vite names assets by their content hash: cached for good. */
  immutable: boolean;
}

/** dist/web-app of this checkout or package: two levels up from src/web and from dist/web alike. */
export function defaultAppDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web-app');
}

export class StaticApp {
  private readonly files = new Map<string, StaticFile>();

  constructor(readonly dir: string) {
    if (!existsSync(join(dir, 'index.html')))
      throw new Error(`the web console is not built (no ${join(dir, 'index.html')}): run \`make build\``);
    const walk = (folder: string) => {
      for (const entry of readdirSync(folder)) {
        const path = join(folder, entry);
        if (statSync(path).isDirectory()) walk(path);
        else {
          const url = '/' + relative(dir, path).split(sep).join('/');
          this.files.set(url, {
            body: readFileSync(path),
            type: TYPES[extname(path)] ?? 'application/octet-stream',
            immutable: url.startsWith('/assets/'),
          });
        }
      }
    };
    walk(dir);
  }

  serve(pathname: string, response: ServerResponse): void {
    const file =
      this.files.get(pathname) ?? (pathname.startsWith('/assets/') ? undefined : this.files.get('/index.html'));
    if (!file) {
      response.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain' });
      response.end('not found');
      return;
    }
    if (file.type.startsWith('text/html')) return this.serveHtml(file, response);
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    response.end(file.body);
  }

  /** index.html with a new style nonce, in the CSP header and in a meta element for the app. */
  private serveHtml(file: StaticFile, response: ServerResponse): void {
    const nonce = randomBytes(18).toString('base64');
    const html = file.body.toString('utf8').replace('<head>', `<head>\n    ${NONCE_META.replace('%NONCE%', nonce)}`);
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-security-policy': contentSecurityPolicy(nonce),
      'content-type': file.type,
      'cache-control': 'no-store',
    });
    response.end(html);
  }
}
