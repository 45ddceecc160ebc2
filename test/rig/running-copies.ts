// How many copies of each VM *run* (state running or blocked), asked of every rig host's libvirtd
// over its local UNIX socket (the host's private /run/libvirt, seen from here): a partition cuts
// the TCP path the controller uses, never this one. A paused copy (a migration's destination
// before the switchover, a source stopped at it) does not count as running; two QEMU processes of
// one VM during a migration are normal, two running domains never are.
import { join } from 'node:path';
import { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import type { Rig } from './rig.js';

export interface CopySample {
  /** ms since start. */
  at: number;
  /** By host name (host0…): the VM's state there, if it has a domain. */
  states: Map<string, string>;
}

export class RunningCopiesChecker {
  samples = 0;
  readonly violations: string[] = [];
  /** The last sample of each VM (by UID). */
  readonly last = new Map<string, CopySample>();
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private busy = false;
  private readonly connections = new Map<string, LibvirtConnection>();

  constructor(
    private readonly rig: Rig,
    /** UID → a name for messages. */
    private readonly uids: () => Map<string, string>,
    private readonly periodMs = 200,
  ) {}

  async start(): Promise<void> {
    for (const host of this.rig.hosts) {
      this.connections.set(
        host.name,
        await LibvirtConnection.open(`qemu+unix:///system?socket=${join(host.runDir, 'libvirt-sock')}`),
      );
    }
    this.startedAt = Date.now();
    await this.sample();
    this.timer = setInterval(() => void this.sample(), this.periodMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.connections.values()].map((conn) => conn.close().catch(() => undefined)));
    this.connections.clear();
  }

  /** One look at every host; records a violation when a VM runs on two hosts at once. */
  async sample(): Promise<Map<string, CopySample>> {
    if (this.busy) return this.last;
    this.busy = true;
    try {
      const at = Date.now() - this.startedAt;
      const byHost = await Promise.all(
        [...this.connections].map(async ([host, conn]) => [host, await conn.listAllDomains().catch(() => [])] as const),
      );
      for (const [uid, name] of this.uids()) {
        const states = new Map<string, string>();
        for (const [host, domains] of byHost) {
          const domain = domains.find((d) => d.uuid === uid);
          if (domain) states.set(host, `${domain.state}/${String(domain.reason)}`);
        }
        const running = [...states].filter(([, state]) => /^(running|blocked)\//.test(state));
        if (running.length > 1)
          this.violations.push(
            `${name}: running on ${running.map(([h, s]) => `${h} (${s})`).join(' and ')} at +${at} ms`,
          );
        this.last.set(uid, { at, states });
      }
      this.samples++;
      return this.last;
    } finally {
      this.busy = false;
    }
  }

  /** Hosts (host0…) where the VM runs in the last sample. */
  runningOn(uid: string): string[] {
    return [...(this.last.get(uid)?.states ?? [])]
      .filter(([, state]) => /^(running|blocked)\//.test(state))
      .map(([host]) => host);
  }

  sampling(): string {
    const seconds = (Date.now() - this.startedAt) / 1000;
    return `${this.samples} samples over ${seconds.toFixed(1)} s (${(this.samples / seconds).toFixed(1)}/s)`;
  }
}
