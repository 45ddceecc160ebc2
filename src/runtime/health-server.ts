// Liveness and readiness endpoints of a controller process.
import { createServer, type Server } from 'node:http';

export interface HealthChecks {
  live: () => boolean;
  ready: () => boolean;
}

export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?<host>\[[^\]]+\]|[^:]*):(?<port>\d{1,5})$/.exec(address);
  const port = Number(match?.groups?.port);
  if (!match?.groups || port > 65535) {
    throw new Error(`"${address}" is not HOST:PORT (e.g. 127.0.0.1:8081, or :8081 for all addresses)`);
  }
  return { host: match.groups.host?.replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

export async function startHealthServer(address: string, checks: HealthChecks): Promise<Server> {
  const { host, port } = parseAddress(address);
  const server = createServer((req, res) => {
    const check = req.url === '/healthz' ? checks.live : req.url === '/readyz' ? checks.ready : undefined;
    if (!check) {
      res.writeHead(404).end('not found\n');
      return;
    }
    const ok = check();
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
