// `virtfleet api`: the aggregated API server (src/apiserver), the second process of the same
// codebase. kube-apiserver reaches it through the APIService v1alpha1.subresources.virtfleet.io.
import { Command, Option } from 'commander';
import { ApiServer } from '../apiserver/server.js';
import { DEFAULT_SESSION_TIMES } from '../web/sessions.js';
import { WebServer } from '../web/server.js';
import { createLogger, LOG_LEVELS } from '../observability/logging.js';
import { loadKubeConfig } from './controller.js';

interface ApiFlags {
  kubeconfig?: string;
  bindAddress: string;
  securePort: string;
  tlsCertFile: string;
  tlsPrivateKeyFile: string;
  credentialsNamespace: string;
  maxSessionsPerUser: string;
  maxSessions: string;
  logLevel: string;
  webPort?: string;
  webSessionIdleMinutes: string;
  maxUploadBytes: string;
  uploadDir?: string;
}

/** A byte count: digits, optionally with a Ki, Mi, Gi or Ti suffix. */
export function byteCount(flag: string, value: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti)?$/.exec(value);
  const shift = { Ki: 10, Mi: 20, Gi: 30, Ti: 40 }[match?.[2] ?? ''] ?? 0;
  const bytes = match ? Number(match[1]) * 2 ** shift : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new Error(`${flag}: "${value}" is not a byte count (e.g. 21474836480 or 20Gi)`);
  return bytes;
}

function positiveInteger(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${flag}: "${value}" is not a positive integer`);
  return parsed;
}

function port(value: string, flag = '--secure-port'): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535)
    throw new Error(`${flag}: "${value}" is not a port (0-65535; 0 picks a free one)`);
  return parsed;
}

export function apiCommand(): Command {
  return new Command('api')
    .description(
      'run the aggregated API server of group subresources.virtfleet.io (VM consoles, image uploads), reached through kube-apiserver',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster config)')
    .option('--bind-address <ip>', 'address to listen on', '0.0.0.0')
    .option('--secure-port <port>', 'HTTPS port (0: a free one, printed in the log)', '8443')
    .requiredOption('--tls-cert-file <file>', 'PEM serving certificate (for the Service name the APIService points at)')
    .requiredOption('--tls-private-key-file <file>', 'PEM private key of --tls-cert-file')
    .option(
      '--credentials-namespace <ns>',
      "namespace of the HostPools' credential Secrets (the controller's)",
      process.env.POD_NAMESPACE ?? 'virtfleet-system',
    )
    .option('--max-sessions-per-user <n>', 'console sessions one user may hold at once on this replica', '8')
    .option('--max-sessions <n>', 'console sessions this replica holds at most', '512')
    .option(
      '--web-port <port>',
      'also serve the web console (docs/web.md) over HTTPS on this port, with the same certificate (0: a free one, printed in the log); unset: no console',
    )
    .option(
      '--max-upload-bytes <bytes>',
      'the largest image upload taken (virtualmachineimages/upload); its staging directory must hold it (e.g. 20Gi)',
      '20Gi',
    )
    .option(
      '--upload-dir <dir>',
      'where image uploads are staged until checked and written to the hosts (default: $TMPDIR or /tmp)',
    )
    .option('--web-session-idle-minutes <n>', 'a web console session ends after this long without a request', '30')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS as string[]).default('info'))
    .action(async (flags: ApiFlags) => {
      const logger = createLogger(flags.logLevel);
      let server: ApiServer | undefined;
      let web: WebServer | undefined;
      try {
        const idleMinutes = positiveInteger('--web-session-idle-minutes', flags.webSessionIdleMinutes);
        server = new ApiServer({
          kubeConfig: loadKubeConfig(flags.kubeconfig),
          logger,
          host: flags.bindAddress,
          port: port(flags.securePort),
          tlsCertFile: flags.tlsCertFile,
          tlsKeyFile: flags.tlsPrivateKeyFile,
          credentialsNamespace: flags.credentialsNamespace,
          uploads: {
            maxBytes: byteCount('--max-upload-bytes', flags.maxUploadBytes),
            ...(flags.uploadDir ? { stagingDir: flags.uploadDir } : {}),
          },
          limits: {
            perUser: positiveInteger('--max-sessions-per-user', flags.maxSessionsPerUser),
            total: positiveInteger('--max-sessions', flags.maxSessions),
          },
        });
        if (flags.webPort !== undefined)
          web = new WebServer({
            kubeConfig: loadKubeConfig(flags.kubeconfig),
            logger,
            host: flags.bindAddress,
            port: port(flags.webPort, '--web-port'),
            tlsCertFile: flags.tlsCertFile,
            tlsKeyFile: flags.tlsPrivateKeyFile,
            sessionTimes: { ...DEFAULT_SESSION_TIMES, idleMs: idleMinutes * 60_000 },
          });
        await server.start();
        await web?.start();
      } catch (error) {
        logger.fatal({ err: error }, (error as Error).message);
        process.exitCode = 1;
        await web?.stop().catch(() => undefined);
        await server?.stop().catch(() => undefined);
        return;
      }
      const stop = server;
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const)
          process.once(signal, () => {
            logger.info({ signal }, 'shutdown requested');
            resolve();
          });
      });
      await web?.stop();
      await stop.stop();
    });
}
