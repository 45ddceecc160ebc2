// Health probes of running VMs (spec.healthCheck): the QEMU guest agent (guest-ping), a TCP
// connect, or an HTTP GET (2xx/3xx healthy) to the VM's first address, every periodSeconds
// after initialDelaySeconds, each within timeoutSeconds. The probes run on timers in the
// controller, never inside a reconcile; when failures in a row reach failureThreshold (or the
// verdict flips back), the VM is enqueued and its reconcile decides (restart per runStrategy).
import { errorText } from './error-text.js';
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { VirtualMachineSpec } from '../api/virtualmachine.js';
import type { Hypervisor } from '../hypervisors/hypervisor.js';

export type HealthCheck = NonNullable<VirtualMachineSpec['healthCheck']>;
export type ProbeResult = { ok: true; message: string } | { ok: false; message: string };

/** A TCP connection to address:port within timeoutMs. */
export function tcpProbe(address: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const where = `tcp ${address.includes(':') ? `[${address}]` : address}:${port}`;
    const socket = connect({ host: address, port, timeout: timeoutMs });
    const done = (result: ProbeResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done({ ok: true, message: `${where}: connected` }));
    socket.once('timeout', () => done({ ok: false, message: `${where}: no connection within ${timeoutMs / 1000} s` }));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done({ ok: false, message: `${where}: ${error.code ?? error.message}` }),
    );
  });
}

/** An HTTP(S) GET; healthy on 2xx and 3xx. Certificates are not verified (guests often have self-signed ones). */
export function httpProbe(
  address: string,
  port: number,
  path: string,
  scheme: 'HTTP' | 'HTTPS',
  timeoutMs: number,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const host = address.includes(':') ? `[${address}]` : address;
    const where = `${scheme.toLowerCase()}://${host}:${port}${path}`;
    const send = scheme === 'HTTPS' ? httpsRequest : httpRequest;
    const request = send(
      {
        host: address,
        port,
        path,
        method: 'GET',
        timeout: timeoutMs,
        rejectUnauthorized: false,
        headers: { 'user-agent': 'virtfleet-probe' },
      },
      (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve(
          status >= 200 && status < 400
            ? { ok: true, message: `${where}: HTTP ${status}` }
            : { ok: false, message: `${where}: HTTP ${status}` },
        );
      },
    );
    request.once('timeout', () => {
      request.destroy();
      resolve({ ok: false, message: `${where}: no answer within ${timeoutMs / 1000} s` });
    });
    request.once('error', (error: NodeJS.ErrnoException) =>
      resolve({ ok: false, message: `${where}: ${error.code ?? error.message}` }),
    );
    request.end();
  });
}

/** One probe of the VM as its health check says; `address` is its first known address. */
export async function probeOnce(
  check: HealthCheck,
  target: { address: string | undefined; uid: string; hypervisor: Hypervisor },
): Promise<ProbeResult> {
  const timeoutMs = check.timeoutSeconds * 1000;
  if (check.guestAgent) {
    try {
      await target.hypervisor.guestPing(target.uid, check.timeoutSeconds);
      return { ok: true, message: 'guest agent answered guest-ping' };
    } catch (error) {
      return { ok: false, message: `guest agent: ${errorText(error)}` };
    }
  }
  const port = check.tcp?.port ?? check.http?.port ?? 0;
  if (!target.address)
    return {
      ok: false,
      message: `no address known for the guest (status.addresses is empty), cannot probe port ${port}`,
    };
  if (check.tcp) return tcpProbe(target.address, check.tcp.port, timeoutMs);
  if (check.http) return httpProbe(target.address, check.http.port, check.http.path, check.http.scheme, timeoutMs);
  return { ok: false, message: 'spec.healthCheck names no probe' };
}

export interface HealthVerdict {
  /** Failures in a row. */
  failures: number;
  /** The last probe's result; undefined before the first one. */
  last: ProbeResult | undefined;
}

interface Loop {
  /** The health check the loop runs, as JSON: a changed spec restarts it. */
  spec: string;
  timer: NodeJS.Timeout | undefined;
  verdict: HealthVerdict;
  running: boolean;
}

export interface ProbeTarget {
  check: HealthCheck;
  /** Read at each probe: the VM's first address and its host now. */
  resolve: () => { address: string | undefined; hypervisor: Hypervisor } | undefined;
}

export class HealthProbes {
  private readonly loops = new Map<string, Loop>();

  /** `changed` is called with the UID when a VM's verdict crosses its threshold either way. */
  constructor(private readonly changed: (uid: string) => void) {}

  /** Makes sure the VM is probed as `target.check` says (a changed check starts over). */
  ensure(uid: string, target: ProbeTarget): void {
    const spec = JSON.stringify(target.check);
    const existing = this.loops.get(uid);
    if (existing?.spec === spec) return;
    this.stop(uid);
    const verdict: HealthVerdict = { failures: 0, last: undefined };
    const loop: Loop = { spec, verdict, running: false, timer: undefined };
    const tick = async () => {
      if (loop.running) return; // a slow probe: skip a beat rather than pile up
      loop.running = true;
      try {
        const resolved = target.resolve();
        if (!resolved) return;
        const result = await probeOnce(target.check, { ...resolved, uid });
        if (this.loops.get(uid) !== loop) return;
        const before = verdict.failures >= target.check.failureThreshold;
        const wasOk = verdict.last?.ok;
        verdict.failures = result.ok ? 0 : verdict.failures + 1;
        verdict.last = result;
        const after = verdict.failures >= target.check.failureThreshold;
        // Tell the VM on a crossing of the threshold, on its first result, and on each failure
        // (status shows the count), not on every success.
        if (before !== after || wasOk === undefined || !result.ok || wasOk !== result.ok) this.changed(uid);
      } finally {
        loop.running = false;
      }
    };
    const period = target.check.periodSeconds * 1000;
    loop.timer = setTimeout(function first() {
      void tick();
      loop.timer = setInterval(() => void tick(), period);
      loop.timer.unref();
    }, target.check.initialDelaySeconds * 1000);
    loop.timer.unref();
    this.loops.set(uid, loop);
  }

  verdict(uid: string): HealthVerdict | undefined {
    return this.loops.get(uid)?.verdict;
  }

  /** Starts counting afresh (after a restart): the initial delay applies again. */
  restart(uid: string, target: ProbeTarget): void {
    this.stop(uid);
    this.ensure(uid, target);
  }

  stop(uid: string): void {
    const loop = this.loops.get(uid);
    if (!loop) return;
    clearTimeout(loop.timer);
    clearInterval(loop.timer);
    this.loops.delete(uid);
  }

  stopAll(): void {
    for (const uid of [...this.loops.keys()]) this.stop(uid);
  }
}
