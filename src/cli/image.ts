// `virtfleet image upload NAME --file F`: the file's bytes through kube-apiserver to the
// aggregated subresource virtualmachineimages/upload (src/apiserver/image-upload.ts), with the
// user's own credentials from the kubeconfig, so RBAC decides as for the console. The file is
// hashed first and its sha256 sent along, so the API server can tell bytes lost or changed on
// the way from a whole file; then its status.upload is followed until the hosts have it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import { VIRTUAL_MACHINE_IMAGE, type ImageObject } from '../controllers/image/resource.js';
import { checkNamespace, checkObjectName, isNotFound, KubeClient } from '../runtime/kube-client.js';
import { KubeConfigError, loadKubeConfig } from './controller.js';
import { CliError, timeoutMs, usage, UsageError } from './vm.js';

const GROUP_VERSION = 'subresources.virtfleet.io/v1alpha1';
const POLL_MS = 500;

export interface UploadFlags {
  file?: string;
  namespace?: string;
  kubeconfig?: string;
  sha256?: string;
  wait: boolean;
  timeout: string;
}

/** Where progress goes: a line rewritten in place on a terminal, else a line per 10%. */
export interface ProgressSink {
  tty: boolean;
  write(text: string): void;
}

/** The upload URL of image `name` through kube-apiserver at `server`. */
export function uploadUrl(server: string, namespace: string, name: string, sha256: string): URL {
  const url = new URL(server);
  const base = url.pathname.replace(/\/$/, '');
  url.pathname = `${base}/apis/${GROUP_VERSION}/namespaces/${encodeURIComponent(namespace)}/virtualmachineimages/${encodeURIComponent(name)}/upload`;
  url.searchParams.set('sha256', sha256);
  return url;
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Sends the file; resolves with the server's message on 202, rejects with its Status message otherwise. */
export async function sendFile(
  config: KubeConfig,
  namespace: string,
  name: string,
  file: string,
  size: number,
  sha256: string,
  progress: ProgressSink,
): Promise<string> {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new CliError('the kubeconfig has no current cluster');
  const url = uploadUrl(cluster.server, namespace, name, sha256);
  const options: RequestOptions & Record<string, unknown> = {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
  };
  await config.applyToHTTPSOptions(options);
  const started = Date.now();
  let sent = 0;
  let shownTenth = -1;
  const show = (final: boolean) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? `, ${mib(sent / seconds)}/s` : '';
    const line = `uploading ${name}: ${Math.floor((sent / size) * 100)}% (${mib(sent)} of ${mib(size)}${rate})`;
    if (progress.tty) progress.write(`\r${line}${final ? '\n' : ''}`);
    else if (Math.floor((sent / size) * 10) > shownTenth || final) {
      shownTenth = Math.floor((sent / size) * 10);
      progress.write(`${line}\n`);
    }
  };
  let lastShown = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      if (Date.now() - lastShown > 200) {
        lastShown = Date.now();
        show(false);
      }
      done(null, chunk);
    },
  });
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(url, options, resolve);
    req.on('error', (error) => reject(new CliError(`cannot upload to ${cluster.server}: ${error.message}`)));
    pipeline(createReadStream(file), counter, req).catch((error: unknown) => {
      // An answer before the body is sent (a refusal) ends the request early: its Status says why.
      if (!req.destroyed) reject(new CliError(`reading ${file}: ${String(error)}`));
    });
  });
  let body = '';
  response.setEncoding('utf8');
  for await (const chunk of response) body += (chunk as string).slice(0, 64 << 10);
  let message = body.trim() || `HTTP ${response.statusCode}`;
  try {
    const status = JSON.parse(body) as { message?: string };
    if (status.message) message = status.message;
  } catch {
    // not a Status: the text as it came
  }
  if (response.statusCode !== 202) {
    if (progress.tty && sent > 0) progress.write('\n');
    throw new CliError(`upload refused (HTTP ${response.statusCode}): ${message}`);
  }
  show(true);
  return message;
}

function target(name: string, flags: UploadFlags): { config: KubeConfig; namespace: string } {
  usage(() => checkObjectName(name), 'NAME');
  if (flags.namespace !== undefined) usage(() => checkNamespace(flags.namespace!), '--namespace');
  if (flags.sha256 !== undefined && !/^[a-f0-9]{64}$/.test(flags.sha256))
    throw new UsageError(`--sha256: "${flags.sha256}" is not 64 lowercase hex digits (as sha256sum prints them)`);
  if (!flags.file) throw new UsageError('--file is required: the image file to upload');
  let config: KubeConfig;
  try {
    config = loadKubeConfig(flags.kubeconfig);
  } catch (error) {
    throw error instanceof KubeConfigError ? new UsageError(error.message) : error;
  }
  const namespace = flags.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
  usage(() => checkNamespace(namespace), "the kubeconfig context's namespace");
  return { config, namespace };
}

async function getImage(client: KubeClient, namespace: string, name: string): Promise<ImageObject | undefined> {
  try {
    return await client.get<ImageObject>(VIRTUAL_MACHINE_IMAGE, namespace, name);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function runUpload(
  name: string,
  flags: UploadFlags,
  out: (line: string) => void,
  progress: ProgressSink,
): Promise<void> {
  const { config, namespace } = target(name, flags);
  const ms = timeoutMs(flags.timeout);
  const file = flags.file!;
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`--file: ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!info.isFile()) throw new UsageError(`--file: ${file} is not a regular file`);
  if (info.size === 0) throw new UsageError(`--file: ${file} is empty`);
  const client = new KubeClient(config, 'virtfleet-cli');
  const before = await getImage(client, namespace, name);
  if (!before) throw new CliError(`virtualmachineimage ${name} not found in namespace ${namespace}`);
  const sha256 = await sha256OfFile(file);
  if (flags.sha256 !== undefined && sha256 !== flags.sha256)
    throw new CliError(`${file} has sha256 ${sha256}, not ${flags.sha256} (--sha256): nothing uploaded`);
  out(await sendFile(config, namespace, name, file, info.size, sha256, progress));
  if (!flags.wait) return;
  const since = before.status?.upload?.updatedAt;
  let last = '';
  for (const deadline = Date.now() + ms; ;) {
    const image = await getImage(client, namespace, name);
    if (!image) throw new CliError(`virtualmachineimage ${name} was deleted while uploading`);
    const upload = image.status?.upload;
    if (upload && upload.updatedAt !== since) {
      const line = `${upload.state}${upload.progress ? ` ${upload.progress}` : ''}`;
      if (line !== last && upload.state === 'Uploading') out(`image ${name}: ${line}`);
      last = line;
      if (upload.state === 'Failed') throw new CliError(`image ${name}: upload failed: ${upload.message ?? ''}`);
      if (upload.state === 'Done' && upload.sha256 === sha256) {
        const also = upload.message ? ` (not on: ${upload.message})` : '';
        out(
          `image ${name}: on host${upload.hosts && upload.hosts.length > 1 ? 's' : ''} ${(upload.hosts ?? []).join(', ')}${also}`,
        );
        return;
      }
    }
    if (Date.now() > deadline)
      throw new CliError(
        `image ${name}: not written to the hosts after ${flags.timeout} s (${last || 'no status yet'})`,
      );
    await delay(POLL_MS);
  }
}

export function imageCommand(): Command {
  const upload = new Command('upload')
    .argument('<name>', 'the VirtualMachineImage (its spec.source.upload set)')
    .description(
      "upload an image file (qcow2, raw or iso) into a VirtualMachineImage through the API server; the file's sha256 is sent along and checked",
    )
    .option('--file <path>', 'the image file (required)')
    .option('--sha256 <hex>', 'refuse to send the file unless it has this sha256')
    .option('-n, --namespace <namespace>', "namespace (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--no-wait', 'return once the API server took the file, without following its writing to the hosts')
    .addOption(new Option('--timeout <seconds>', 'how long to follow the writing to the hosts').default('600'))
    .action(async (name: string, flags: UploadFlags) => {
      const sink: ProgressSink = { tty: process.stderr.isTTY === true, write: (text) => process.stderr.write(text) };
      try {
        await runUpload(name, flags, (line) => process.stdout.write(`${line}\n`), sink);
      } catch (error) {
        process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = error instanceof UsageError ? 2 : 1;
      }
    });
  return new Command('image').description('work with VirtualMachineImages').addCommand(upload);
}
