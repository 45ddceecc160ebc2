// The built single-page app (web/, built by Vite into dist/web-app), read once at start and
// served from memory. Any path that is not a file is the app's own route: index.html.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SECURITY_HEADERS } from './http.js';

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
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    response.end(file.body);
  }
}
