// One libvirt connection per host URI, for the whole controller. Opened lazily (first call or
// first subscriber), kept open by a HostLink (reconnects with backoff, keepalive, one event
// stream per host), and closed together at shutdown. Hypervisor objects (driver.ts) borrow
// connections from here; nothing else opens libvirt connections.
import { LibvirtConnection } from './native/index.js';
import {
  HostLink,
  HostUnavailableError,
  type Connector,
  type CredentialsProvider,
  type KeepAliveOptions,
  type LinkListener,
  type LinkStatus,
  type ReconnectOptions,
} from './host-link.js';

export {
  HostUnavailableError,
  reconnectDelay,
  type Connector,
  type Credentials,
  type CredentialsProvider,
  type DisconnectReason,
  type KeepAliveOptions,
  type KeepAliveStatus,
  type LinkEvent,
  type LinkListener,
  type LinkState,
  type LinkStatus,
  type ReconnectOptions,
} from './host-link.js';

export interface ConnectionPoolOptions {
  /** Credentials per URI (from the HostPool's credentialsSecretRef); none by default. */
  credentials?: CredentialsProvider;
  /** Keepalive for remote URIs; false turns it off. Default: every 5 s, closed after 3 missed probes. */
  keepAlive?: KeepAliveOptions | false;
  /** Reconnect backoff. Default: 500 ms doubling to 30 s, 20 % jitter. */
  reconnect?: Partial<ReconnectOptions>;
  /** How connections are opened; default LibvirtConnection.open. */
  connect?: Connector;
  /** Random source for jitter; default Math.random. */
  random?: () => number;
  /** A subscriber threw; default: a process warning. */
  onListenerError?: (error: unknown, uri: string) => void;
}

const DEFAULT_KEEPALIVE: KeepAliveOptions = { intervalSeconds: 5, count: 3 };
const DEFAULT_RECONNECT: ReconnectOptions = { initialMs: 500, maxMs: 30_000, jitter: 0.2 };

export class LibvirtConnectionPool {
  private readonly links = new Map<string, HostLink>();
  private closing: Promise<void> | undefined;
  private credentials: CredentialsProvider | undefined;

  constructor(private readonly options: ConnectionPoolOptions = {}) {
    const jitter = options.reconnect?.jitter;
    if (jitter !== undefined && (jitter < 0 || jitter > 1))
      throw new RangeError(`reconnect.jitter must be within 0 and 1, not ${jitter}`);
    this.credentials = options.credentials;
  }

  /**
   * Replaces the credentials provider (the controller's Fleet installs one that reads Secrets).
   * Asked at the next connect or reconnect of each host; open connections stay as they are.
   */
  setCredentials(provider: CredentialsProvider | undefined): void {
    this.credentials = provider;
  }

  /** The open connection to `uri`; rejects with HostUnavailableError while the host is down. */
  connection(uri: string): Promise<LibvirtConnection> {
    const link = this.link(uri);
    return link ? link.acquire() : Promise.reject(this.closedError(uri));
  }

  /**
   * Events of host `uri` (connected, disconnected, domain events) for as long as the listener
   * stays subscribed, across reconnects. Subscribing opens the connection if need be.
   */
  subscribe(uri: string, listener: LinkListener): () => void {
    const link = this.link(uri);
    if (!link) return () => {};
    return link.subscribe(listener);
  }

  /** The state of the connection to `uri` (connected, waiting to reconnect…); undefined for a URI never used. */
  status(uri: string): LinkStatus | undefined {
    return this.links.get(uri)?.status;
  }

  /** The URIs the pool serves. */
  uris(): string[] {
    return [...this.links.keys()];
  }

  /** Stops serving one host (it left its HostPool): closes its connection, ends its reconnects. */
  async release(uri: string): Promise<void> {
    const link = this.links.get(uri);
    if (!link) return;
    this.links.delete(uri);
    await link.shutdown();
  }

  /**
   * Closes every connection and cancels every reconnect; later calls reject. Idempotent. The
   * hosts stay listed, with state 'closed'.
   */
  closeAll(): Promise<void> {
    this.closing ??= Promise.all([...this.links.values()].map((link) => link.shutdown())).then(() => {});
    return this.closing;
  }

  private link(uri: string): HostLink | undefined {
    if (this.closing) return undefined;
    let link = this.links.get(uri);
    if (!link) {
      const onListenerError = this.options.onListenerError ?? defaultListenerError;
      link = new HostLink(uri, {
        credentials: (u) => this.credentials?.(u),
        keepAlive: this.options.keepAlive ?? DEFAULT_KEEPALIVE,
        reconnect: { ...DEFAULT_RECONNECT, ...this.options.reconnect },
        connect: this.options.connect ?? ((u, o) => LibvirtConnection.open(u, o)),
        random: this.options.random ?? Math.random,
        onListenerError: (error) => onListenerError(error, uri),
      });
      this.links.set(uri, link);
    }
    return link;
  }

  private closedError(uri: string): HostUnavailableError {
    return new HostUnavailableError(uri, `connection pool is closed; ${uri} is no longer served`, undefined);
  }
}

function defaultListenerError(error: unknown, uri: string): void {
  process.emitWarning(
    `a listener of ${uri} events threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
}
