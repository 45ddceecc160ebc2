// `virtfleet controller`: the controller process.
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { findHomeDir, KubeConfig } from '@kubernetes/client-node';
import { createLogger, LOG_LEVELS } from '../observability/logging.js';
import { Fleet } from '../hosts/fleet.js';
import { libvirtHypervisors } from './libvirt-hypervisors.js';
import { addControllers, type ControllersOptions } from '../controllers/setup.js';
import { Manager } from '../runtime/manager.js';
import { LeaderPodLabel, podFromEnv } from '../runtime/leader-pod-label.js';
import { PXE_DEFAULTS, PxeValueError, pxeSettings, type PxeSettings } from '../provisioning/pxe.js';

/**
 * No kubeconfig was found, or the one given cannot be read. The message says which files were
 * looked for and how to give one; the CLI's commands exit 2 (a usage error) on it.
 */
export class KubeConfigError extends Error {}

const HOW_TO_GIVE = 'Give one with --kubeconfig FILE or KUBECONFIG=FILE';
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** On the leader's pod only: Service virtfleet-install selects it to reach the install endpoint. */
export const INSTALL_ENDPOINT_LEADER_LABEL = 'virtfleet.io/install-endpoint-leader';

/**
 * The kubeconfig, looked for as kubectl does: --kubeconfig, else the files in $KUBECONFIG (merged),
 * else ~/.kube/config, else the pod's service account. When none is there, a KubeConfigError says
 * so, instead of the client's later "HTTP protocol is not allowed" for its made-up
 * http://localhost:8080.
 */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  const read = (file: string, from: string, config = kc) => {
    try {
      config.loadFromFile(file);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
      throw new KubeConfigError(`cannot read kubeconfig ${file} (${from}): ${reason}`);
    }
  };
  if (path) {
    read(path, 'from --kubeconfig');
    return kc;
  }
  const listed = (process.env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  if (listed.length > 0) {
    read(listed[0]!, 'listed in $KUBECONFIG');
    for (const file of listed.slice(1)) {
      const other = new KubeConfig();
      read(file, 'listed in $KUBECONFIG', other);
      kc.mergeConfig(other);
    }
    return kc;
  }
  const home = findHomeDir();
  const file = home ? join(home, '.kube', 'config') : undefined;
  if (file && existsSync(file)) {
    read(file, 'the default kubeconfig');
    return kc;
  }
  if (existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
    return kc;
  }
  const where = file ? `${file} does not exist` : '~/.kube/config cannot be looked for ($HOME is not set)';
  throw new KubeConfigError(
    `no kubeconfig: $KUBECONFIG is not set, ${where}, and this is not a pod with a service account. ${HOW_TO_GIVE}.`,
  );
}

interface ControllerFlags {
  kubeconfig?: string;
  healthAddress: string;
  metricsAddress: string;
  logLevel: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDuration: string;
  shutdownGrace: string;
  renewDeadline: string;
  retryPeriod: string;
  orphanScanInterval: string;
  installAddress: string;
  installUrlBase?: string;
  installTlsCert?: string;
  installTlsKey?: string;
  pxeNetwork: string;
  pxeBridge: string;
  pxeAddress: string;
  pxePool: string;
  pxePoolPath: string;
}

function seconds(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new Error(`${flag}: "${value}" is not a positive number of seconds`);
  return parsed * 1000;
}

function installEndpoint(flags: ControllerFlags): Pick<ControllersOptions, 'installEndpoint'> {
  if ((flags.installTlsCert === undefined) !== (flags.installTlsKey === undefined)) {
    throw new Error('--install-tls-cert and --install-tls-key go together: give both or neither');
  }
  if (!flags.installAddress) {
    if (flags.installUrlBase !== undefined || flags.installTlsCert !== undefined)
      throw new Error('--install-url-base and --install-tls-* need --install-address');
    return {};
  }
  return {
    installEndpoint: {
      address: flags.installAddress,
      ...(flags.installUrlBase !== undefined ? { urlBase: flags.installUrlBase } : {}),
      ...(flags.installTlsCert !== undefined && flags.installTlsKey !== undefined
        ? { tls: { certFile: flags.installTlsCert, keyFile: flags.installTlsKey } }
        : {}),
    },
  };
}

/** The PXE settings of the flags, checked now: a bad one stops the controller at start, naming its flag. */
export function installPxe(
  flags: Pick<ControllerFlags, 'pxeNetwork' | 'pxeBridge' | 'pxeAddress' | 'pxePool' | 'pxePoolPath'>,
): Pick<ControllersOptions, 'installPxe'> {
  const given: PxeSettings = {
    network: flags.pxeNetwork,
    bridge: flags.pxeBridge,
    address: flags.pxeAddress,
    pool: flags.pxePool,
    poolPath: flags.pxePoolPath,
  };
  try {
    return { installPxe: pxeSettings(given) };
  } catch (error) {
    if (!(error instanceof PxeValueError)) throw error;
    const flag = `--pxe-${error.field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new Error(`${flag}: ${error.message.slice(error.field.length + 2)}`, { cause: error });
  }
}

export function controllerCommand(): Command {
  return (
    new Command('controller')
      .description('run the virtfleet controller manager')
      .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster config)')
      .option('--health-address <host:port>', 'address for /healthz and /readyz ("" to disable)', ':8081')
      .option('--metrics-address <host:port>', 'address for /metrics ("" to disable)', ':8080')
      .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS as string[]).default('info'))
      .option('--leader-elect', 'elect a leader among replicas through a Lease; only the leader reconciles', false)
      .option(
        '--leader-election-namespace <ns>',
        'namespace of the leader Lease',
        process.env.POD_NAMESPACE ?? 'virtfleet-system',
      )
      .option('--leader-election-id <name>', 'name of the leader Lease', 'virtfleet-controller')
      .option('--lease-duration <seconds>', 'how long a standby waits before taking an unrenewed lease', '15')
      .option('--renew-deadline <seconds>', 'how long the leader keeps trying to renew before giving up', '10')
      .option('--retry-period <seconds>', 'how often the leader renews', '2')
      .option(
        '--shutdown-grace <seconds>',
        'how long a guest has to shut down (runStrategy Halted, vm stop, delete) before it is destroyed',
        '60',
      )
      .option(
        '--orphan-scan-interval <seconds>',
        "how often each host is scanned for orphan domains (virtfleet's marker, no VirtualMachine), besides at connect and on domain events",
        '300',
      )
      .option(
        '--install-address <host:port>',
        'address of the install endpoint that serves installing VMs their Kickstart ("" for none: VMs with spec.install wait)',
        '',
      )
      .option(
        '--install-url-base <url>',
        'the URL guests reach the install endpoint at, when not http(s)://HOST:PORT of --install-address (NAT, a Service)',
      )
      .option(
        '--install-tls-cert <file>',
        'serve the install endpoint over HTTPS with this PEM certificate chain (with --install-tls-key)',
      )
      .option('--install-tls-key <file>', 'the PEM private key for --install-tls-cert')
      // PXE installs (InstallProfile spec.boot.method pxe): what the controller makes on each host.
      .option(
        '--pxe-network <name>',
        'the libvirt network (NAT, DHCP + TFTP) installers boot from on each host',
        PXE_DEFAULTS.network,
      )
      .option('--pxe-bridge <name>', 'its bridge on the host (at most 15 characters)', PXE_DEFAULTS.bridge)
      .option(
        '--pxe-address <ipv4>',
        "the host's address on that network; the network is its /24 (pick one no host uses)",
        PXE_DEFAULTS.address,
      )
      .option(
        '--pxe-pool <name>',
        'the directory storage pool on each host that is the TFTP root (iPXE scripts, installer kernels)',
        PXE_DEFAULTS.pool,
      )
      .option('--pxe-pool-path <dir>', "that pool's directory, when the controller defines it", PXE_DEFAULTS.poolPath)
      .action(async (flags: ControllerFlags) => {
        const logger = createLogger(flags.logLevel);
        const abort = new AbortController();
        for (const signal of ['SIGINT', 'SIGTERM'] as const) {
          process.once(signal, () => {
            logger.info({ signal }, 'shutdown requested');
            abort.abort();
          });
        }
        // One libvirt connection per host for the whole process, closed on the way out.
        const fleet = new Fleet(libvirtHypervisors());
        try {
          const manager = new Manager({
            kubeConfig: loadKubeConfig(flags.kubeconfig),
            logger,
            healthAddress: flags.healthAddress,
            metricsAddress: flags.metricsAddress,
            leaderElection: flags.leaderElect
              ? {
                  namespace: flags.leaderElectionNamespace,
                  name: flags.leaderElectionId,
                  identity: process.env.POD_NAME,
                  leaseDurationMs: seconds('--lease-duration', flags.leaseDuration),
                  renewDeadlineMs: seconds('--renew-deadline', flags.renewDeadline),
                  retryPeriodMs: seconds('--retry-period', flags.retryPeriod),
                }
              : undefined,
          });
          addControllers(manager, {
            fleet,
            logger,
            orphanScanIntervalMs: seconds('--orphan-scan-interval', flags.orphanScanInterval),
            shutdownGraceMs: seconds('--shutdown-grace', flags.shutdownGrace),
            ...installEndpoint(flags),
            ...installPxe(flags),
            ...(process.env.POD_NAME ? { instance: process.env.POD_NAME } : {}),
          });
          const podLabel = new LeaderPodLabel({
            client: manager.client,
            logger,
            label: INSTALL_ENDPOINT_LEADER_LABEL,
            pod: podFromEnv(),
          });
          await podLabel.clearStale();
          manager.add(podLabel);
          await manager.run(abort.signal);
        } catch (error) {
          // Includes a lost leadership: exit so that nothing acts without the lease.
          logger.fatal({ err: error }, (error as Error).message);
          process.exitCode = 1;
        } finally {
          await fleet.close();
        }
      })
  );
}
