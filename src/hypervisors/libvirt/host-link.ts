// One host's connection, kept open: opened on first use, reopened with exponential backoff and
// jitter after it closes (keepalive timeout, EOF, I/O error, or anyone closing it but us), with
// one event stream that outlives the connections under it.
//
//   idle ──use──▶ opening ──ok──▶ up ──closed by the host──▶ waiting ──timer──▶ opening …
//                    └──failed──▶ waiting                                  shut (terminal)
//
// Calls made while the host is down (waiting) fail at once with HostUnavailableError instead of
// queueing behind a dead host: controllers retry through their own backoff. Subscribers see
// only changes: one 'disconnected' when the host goes down (or the first open fails), one
// 'connected' when it is back, however many attempts that took.
import { prepareOpen, type HostCredentials } from './credentials.js';
import { isLibvirtError, type LibvirtConnection, type DomainEvent, type OpenOptions } from './native/index.js';

/**
 * What a host is opened with: username/password through libvirt's auth callback; SSH key and
 * known_hosts, or TLS client certificate, key and CA, through files that exist only while the
 * connection is being opened (credentials.ts).
 */
export type Credentials = HostCredentials;

/** Credentials for a URI, asked afresh at every (re)connect so rotated secrets apply. */
export type CredentialsProvider = (uri: string) => Credentials | undefined | Promise<Credentials | undefined>;

/** Opens a libvirt connection; tests wrap it to reach the connections the pool makes. */
export type Connector = (uri: string, options: OpenOptions) => Promise<LibvirtConnection>;

export interface KeepAliveOptions {
  /** Seconds between probes of a silent peer. */
  intervalSeconds: number;
  /** Unanswered probes after which libvirt closes the connection (reason keepalive). */
  count: number;
}

export interface ReconnectOptions {
  /** Delay before the first reconnect attempt. */
  initialMs: number;
  /** Longest delay between attempts. */
  maxMs: number;
  /** Fraction (0–1) taken off each delay at random, so hosts that failed together do not retry in step. */
  jitter: number;
}

export interface LinkOptions {
  credentials?: CredentialsProvider;
  /** false: leave keepalive off. */
  keepAlive: KeepAliveOptions | false;
  reconnect: ReconnectOptions;
  connect: Connector;
  random: () => number;
  /** Called when a subscriber throws; the other subscribers still get the event. */
  onListenerError: (error: unknown) => void;
}

/**
 * 'active': libvirt probes the peer. 'unsupported': the driver or the peer has no keepalive
 * (local drivers such as test:/// and qemu:///system), so only EOF and errors end the connection.
 * 'off': not asked for.
 */
export type KeepAliveStatus = 'active' | 'unsupported' | 'off';

/** idle: never used; waiting: down, a reconnect is scheduled; closed: shut down for good. */
export type LinkState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

export interface LinkStatus {
  state: LinkState;
  keepAlive: KeepAliveStatus;
  /** Failed connects (or losses) since the host was last connected. */
  failures: number;
  /** When the next attempt is due (epoch ms), while waiting. */
  retryAt?: number;
  lastError?: string;
}

export type LinkEvent =
  | { type: 'connected' }
  | { type: 'disconnected'; reason: DisconnectReason; message?: string }
  | { type: 'domain'; event: DomainEvent };

export type DisconnectReason = 'error' | 'eof' | 'keepalive' | 'client' | 'open-failed' | 'unknown';

export type LinkListener = (event: LinkEvent) => void;

/** The host cannot be used now: it is down and a reconnect is pending, or the pool is closed. */
export class HostUnavailableError extends Error {
  constructor(
    readonly uri: string,
    message: string,
    /** When the next connect attempt is due (epoch ms); undefined when none will be made. */
    readonly retryAt: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HostUnavailableError';
  }
}

/** The n-th (0-based) reconnect delay: initial × 2^n, capped, minus up to `jitter` of it at random. */
export function reconnectDelay(attempt: number, options: ReconnectOptions, random: () => number): number {
  const capped = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 52));
  return Math.round(capped * (1 - options.jitter * random()));
}

export class HostLink {
  private connection: LibvirtConnection | undefined;
  private opening: Promise<LibvirtConnection> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt: number | undefined;
  private failures = 0;
  private lastError: unknown;
  private detach: (() => void) | undefined;
  private shut = false;
  private reported: 'connected' | 'disconnected' | undefined;
  private keepAlive: KeepAliveStatus = 'off';
  private readonly listeners = new Set<LinkListener>();

  constructor(
    readonly uri: string,
    private readonly options: LinkOptions,
  ) {}

  /** The open connection, opening it first if need be. */
  acquire(): Promise<LibvirtConnection> {
    if (this.shut)
      return Promise.reject(
        new HostUnavailableError(this.uri, `connection pool is closed; ${this.uri} is no longer served`, undefined),
      );
    if (this.connection) return Promise.resolve(this.connection);
    if (this.opening) return this.opening;
    if (this.retryTimer) {
      // No countdown in the message: callers put it in status and Events, where a text that
      // changes on every call means a write per reconcile (retryAt carries the time).
      return Promise.reject(
        new HostUnavailableError(
          this.uri,
          `${this.uri} is unreachable (${describe(this.lastError)}); reconnecting`,
          this.retryAt,
          {
            cause: this.lastError,
          },
        ),
      );
    }
    return this.open();
  }

  /** Subscribes to the host's events and makes sure it is (being) connected. */
  subscribe(listener: LinkListener): () => void {
    this.listeners.add(listener);
    if (!this.shut && !this.connection && !this.opening && !this.retryTimer) this.open().catch(() => {});
    return () => this.listeners.delete(listener);
  }

  get status(): LinkStatus {
    const state: LinkState = this.shut
      ? 'closed'
      : this.connection
        ? 'connected'
        : this.opening
          ? 'connecting'
          : this.retryTimer
            ? 'waiting'
            : 'idle';
    const status: LinkStatus = { state, keepAlive: this.keepAlive, failures: this.failures };
    if (this.retryAt !== undefined) status.retryAt = this.retryAt;
    if (this.lastError !== undefined) status.lastError = describe(this.lastError);
    return status;
  }

  /** Closes the connection for good: no more reconnects, listeners dropped. */
  async shutdown(): Promise<void> {
    if (this.shut) return;
    this.shut = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.opening?.catch(() => {});
    const connection = this.connection;
    this.release();
    if (connection) {
      await connection.close().catch(() => {});
      this.report({ type: 'disconnected', reason: 'client', message: 'connection pool closed' });
    }
    this.listeners.clear();
  }

  private open(): Promise<LibvirtConnection> {
    const opening = this.connect().then(
      (connection) => {
        this.opening = undefined;
        return connection;
      },
      (error: unknown) => {
        this.opening = undefined;
        throw error;
      },
    );
    this.opening = opening;
    return opening;
  }

  private async connect(): Promise<LibvirtConnection> {
    let connection: LibvirtConnection | undefined;
    try {
      const credentials = await this.options.credentials?.(this.uri);
      const prepared = await prepareOpen(this.uri, credentials);
      try {
        connection = await this.options.connect(prepared.uri, prepared.auth ? { auth: prepared.auth } : {});
      } finally {
        await prepared.cleanup(); // the key files exist only while the connection is opened
      }
      this.keepAlive = await this.enableKeepAlive(connection);
    } catch (error) {
      await connection?.close().catch(() => {});
      if (this.shut)
        throw new HostUnavailableError(this.uri, 'connection pool closed while connecting', undefined, {
          cause: error,
        });
      this.lastError = error;
      this.report({ type: 'disconnected', reason: 'open-failed', message: describe(error) });
      this.scheduleReconnect();
      throw new HostUnavailableError(this.uri, `cannot connect to ${this.uri}: ${describe(error)}`, this.retryAt, {
        cause: error,
      });
    }
    if (this.shut) {
      await connection.close().catch(() => {});
      throw new HostUnavailableError(this.uri, 'connection pool closed while connecting', undefined);
    }
    this.adopt(connection);
    return connection;
  }

  private async enableKeepAlive(connection: LibvirtConnection): Promise<KeepAliveStatus> {
    const keepAlive = this.options.keepAlive;
    if (!keepAlive) return 'off';
    try {
      return (await connection.setKeepAlive(keepAlive.intervalSeconds, keepAlive.count)) ? 'active' : 'unsupported';
    } catch (error) {
      // Local drivers refuse keepalive: nothing to probe, not a failure.
      if (isLibvirtError(error, 'VIR_ERR_NO_SUPPORT')) return 'unsupported';
      throw error;
    }
  }

  private adopt(connection: LibvirtConnection): void {
    this.connection = connection;
    this.failures = 0;
    this.lastError = undefined;
    const offDomain = connection.onDomainEvent((event) => this.emit({ type: 'domain', event }));
    const offClose = connection.onClose((event) => this.lost(connection, event.reason));
    this.detach = () => {
      offDomain();
      offClose();
    };
    this.report({ type: 'connected' });
  }

  /** The connection closed without us closing it: free it, tell subscribers, try again later. */
  private lost(connection: LibvirtConnection, reason: DisconnectReason): void {
    if (connection !== this.connection) return;
    this.release();
    // A connection libvirt closed still holds a worker thread until close() ends it.
    connection.close().catch(() => {});
    this.lastError = new Error(`connection closed (${reason})`);
    this.report({ type: 'disconnected', reason });
    this.scheduleReconnect();
  }

  private release(): void {
    this.detach?.();
    this.detach = undefined;
    this.connection = undefined;
  }

  private scheduleReconnect(): void {
    if (this.shut) return;
    const delay = reconnectDelay(this.failures, this.options.reconnect, this.options.random);
    this.failures += 1;
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryAt = undefined;
      this.open().catch(() => {}); // a failure schedules the next attempt itself
    }, delay);
    // Reconnecting is background upkeep: it must not keep the process alive on its own.
    this.retryTimer.unref();
  }

  /** Emits connected/disconnected only when the state changes. */
  private report(event: Extract<LinkEvent, { type: 'connected' | 'disconnected' }>): void {
    if (this.reported === event.type) return;
    this.reported = event.type;
    this.emit(event);
  }

  private emit(event: LinkEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.options.onListenerError(error);
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
