// Authentication as the aggregation layer intends (kubernetes/apiserver's requestheader
// authenticator): a request counts only if it comes with a client certificate that the
// requestheader CA signed and whose CN is an allowed name, i.e. from kube-apiserver's front
// proxy, which has already authenticated the user and names them in X-Remote-* headers. The CA,
// the names and the header names are read from kube-system/extension-apiserver-authentication,
// which kube-apiserver writes from its --requestheader-* flags, and followed when it changes.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../observability/logging.js';
import type { Cache } from '../runtime/cache.js';
import type { Informer } from '../runtime/informer.js';
import type { KubeObject, ResourceType } from '../runtime/kube-client.js';
import { StatusError } from './responses.js';

export const AUTHENTICATION_CONFIGMAP = { namespace: 'kube-system', name: 'extension-apiserver-authentication' };

const CONFIG_MAP: ResourceType = {
  kind: 'ConfigMap',
  group: '',
  version: 'v1',
  plural: 'configmaps',
  namespaced: true,
};

export interface RequestHeaderConfig {
  /** PEM bundle of the requestheader CA. */
  ca: string;
  /** CNs the front-proxy cert may have; empty: any cert of the CA. */
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraPrefixes: string[];
  uidHeaders: string[];
}

export interface UserInfo {
  name: string;
  groups: string[];
  extra: Record<string, string[]>;
  uid?: string;
}

function jsonList(data: Record<string, string>, key: string): string[] {
  const value = data[key];
  if (value === undefined || value === '') return [];
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string'))
    throw new Error(`${AUTHENTICATION_CONFIGMAP.name}: ${key} is not a JSON list of strings`);
  return parsed as string[];
}

/** The requestheader settings in the ConfigMap's data; throws when aggregation is not configured. */
export function requestHeaderConfig(data: Record<string, string> | undefined): RequestHeaderConfig {
  const values = data ?? {};
  const ca = values['requestheader-client-ca-file'];
  if (!ca)
    throw new Error(
      `${AUTHENTICATION_CONFIGMAP.namespace}/${AUTHENTICATION_CONFIGMAP.name} has no requestheader-client-ca-file: ` +
        'kube-apiserver runs without --requestheader-client-ca-file, so it cannot proxy to aggregated API servers; ' +
        'start it with the --requestheader-* and --proxy-client-* flags (docs/access.md)',
    );
  return {
    ca,
    allowedNames: jsonList(values, 'requestheader-allowed-names'),
    usernameHeaders: jsonList(values, 'requestheader-username-headers'),
    groupHeaders: jsonList(values, 'requestheader-group-headers'),
    extraPrefixes: jsonList(values, 'requestheader-extra-headers-prefix'),
    uidHeaders: jsonList(values, 'requestheader-uid-headers'),
  };
}

function headerValues(request: IncomingMessage, name: string): string[] {
  const value = request.headersDistinct[name.toLowerCase()];
  return value ?? [];
}

/**
 * The user of a request that came through the front proxy. Throws a 401 StatusError for any
 * other request: no certificate, one of another CA, or a CN that is not allowed.
 */
export function authenticate(request: IncomingMessage, config: RequestHeaderConfig): UserInfo {
  const socket = request.socket as TLSSocket;
  const certificate = socket.getPeerCertificate?.();
  if (!certificate || Object.keys(certificate).length === 0)
    throw unauthorized('no client certificate: this server is reached through the Kubernetes API (kube-apiserver)');
  if (!socket.authorized)
    throw unauthorized(
      `the client certificate is not signed by the requestheader CA (${String(socket.authorizationError)})`,
    );
  const cn = certificate.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (config.allowedNames.length > 0 && (name === undefined || !config.allowedNames.includes(name)))
    throw unauthorized(`the client certificate's CN ${JSON.stringify(name ?? '')} is not a requestheader-allowed-name`);
  const user = config.usernameHeaders.map((header) => headerValues(request, header)[0]).find((v) => v);
  if (!user) throw unauthorized('the front proxy named no user');
  const groups = config.groupHeaders.flatMap((header) => headerValues(request, header));
  const extra: Record<string, string[]> = {};
  for (const [header, values] of Object.entries(request.headersDistinct)) {
    const prefix = config.extraPrefixes.find((p) => header.startsWith(p.toLowerCase()));
    if (!prefix || !values) continue;
    // Keys are percent-encoded in the header name (kubernetes/apiserver unescapes them).
    const key = decodeURIComponent(header.slice(prefix.length)).toLowerCase();
    (extra[key] ??= []).push(...values);
  }
  const uid = config.uidHeaders.map((header) => headerValues(request, header)[0]).find((v) => v);
  return { name: user, groups, extra, ...(uid ? { uid } : {}) };
}

function unauthorized(message: string): StatusError {
  return new StatusError(401, 'Unauthorized', `Unauthorized: ${message}`);
}

/**
 * Follows the ConfigMap through an informer. `current` is the latest valid configuration;
 * `onChange` hears each new one (the server swaps its TLS context to the new CA).
 */
export class RequestHeaderSource {
  private config: RequestHeaderConfig | undefined;
  private problem = 'the ConfigMap has not been read yet';
  private readonly informer: Informer<KubeObject & { data?: Record<string, string> }>;

  constructor(
    cache: Cache,
    private readonly logger: Logger,
    private readonly onChange: (config: RequestHeaderConfig) => void,
  ) {
    this.informer = cache.informerFor(CONFIG_MAP, {
      namespace: AUTHENTICATION_CONFIGMAP.namespace,
      fieldSelector: `metadata.name=${AUTHENTICATION_CONFIGMAP.name}`,
    });
    this.informer.on(() => this.refresh());
  }

  private refresh(): void {
    const object = this.informer.get(`${AUTHENTICATION_CONFIGMAP.namespace}/${AUTHENTICATION_CONFIGMAP.name}`);
    try {
      const next = requestHeaderConfig(object?.data);
      if (JSON.stringify(next) === JSON.stringify(this.config)) return;
      this.config = next;
      this.logger.info(
        { allowedNames: next.allowedNames, usernameHeaders: next.usernameHeaders },
        'requestheader configuration loaded',
      );
      this.onChange(next);
    } catch (error) {
      this.problem = error instanceof Error ? error.message : String(error);
      this.logger.error({ err: this.problem }, 'requestheader configuration unusable');
    }
  }

  /** The configuration to authenticate with; throws (a 503 for the caller) while there is none. */
  get current(): RequestHeaderConfig {
    if (!this.config) throw new StatusError(503, 'ServiceUnavailable', `authentication not ready: ${this.problem}`);
    return this.config;
  }

  /** Why there is no configuration (for readiness), or undefined when there is one. */
  get notReady(): string | undefined {
    return this.config ? undefined : this.problem;
  }
}
