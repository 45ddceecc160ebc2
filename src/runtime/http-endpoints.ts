// The controller process's small HTTP servers: /healthz and /readyz for the
// kubelet, /metrics for Prometheus. Each is a map of path to handler.
import { createServer, type Server } from 'node:http';

export interface EndpointResponse {
  status: number;
  body: string;
  contentType?: string;
}

export type Endpoints = Record<string, () => EndpointResponse | Promise<EndpointResponse>>;

export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?<host>\[[^\]]+\]|[^:]*):(?<port>\d{1,5})$/.exec(address);
  const port = Number(match?.groups?.port);
  if (!match?.groups || port > 65535) {
    throw new Error(`"${address}" is not HOST:PORT (e.g. 127.0.0.1:8081, or :8081 for all addresses)`);
  }
  return { host: match.groups.host?.replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

export async function startEndpoints(address: string, endpoints: Endpoints): Promise<Server> {
  const { host, port } = parseAddress(address);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const handler = endpoints[path];
    if (!handler || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    Promise.resolve()
      .then(handler)
      .then(
        ({ status, body, contentType }) =>
          res.writeHead(status, { 'content-type': contentType ?? 'text/plain' }).end(body),
        (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
}
