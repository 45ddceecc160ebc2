// Issue 16's done-means 2 on the rig: guests exchanging numbered messages over a LAN between rig
// hosts, and what their consoles say about the counters a restore brought back.
//
// The LAN: a bridge in each host's network namespace and a veth pair joining the two bridges (a
// second cable between the hosts, only for the guests). The hosts have no address on it, so
// nothing on it is routed anywhere; it is gone with the namespaces.
//
// The guests run `vf-messages` (test/rig/build-guest.sh), which prints on the console
//   VFM sent to=<peer address> n=<n>           before message n leaves for that peer
//   VFM recv from=<name> n=<n> prev=<p>        for each message received (p: the one before)
// A restore that leaves the guests paused (a `vm pause` hold), a console opened on each, then
// unpause: the first `sent` line per peer is the first message sent after the restore, so the
// sender had sent at most n-1 as restored; the first `recv` line per peer has in `prev` what the
// receiver had received as restored, and when none comes first, HAVE_COMMAND's line says it.
import { execFileSync } from 'node:child_process';
import type { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import type { RigHost } from '../rig/rig.js';

export const LAN_BRIDGE = 'vfsnapbr';

/** A bridge named LAN_BRIDGE in each host's namespace, the bridges joined by a veth pair. */
export function guestLan(hosts: RigHost[]): void {
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  for (const host of hosts) {
    ip('-n', host.netns, 'link', 'add', LAN_BRIDGE, 'type', 'bridge');
    ip('-n', host.netns, 'link', 'set', LAN_BRIDGE, 'up');
  }
  for (const [i, host] of hosts.entries()) {
    if (i === 0) continue;
    // Made inside the first host's namespace, its peer moved straight into the other one: no
    // name is ever taken in the test's own namespace.
    const [near, far] = [`vflan${i}a`, `vflan${i}b`];
    ip('-n', hosts[0]!.netns, 'link', 'add', near, 'type', 'veth', 'peer', 'name', far, 'netns', host.netns);
    ip('-n', hosts[0]!.netns, 'link', 'set', near, 'master', LAN_BRIDGE, 'up');
    ip('-n', host.netns, 'link', 'set', far, 'master', LAN_BRIDGE, 'up');
  }
}

/** Everything a domain's console prints from now on, until close(). */
export class ConsoleWatch {
  text = '';
  private constructor(private readonly stream: { write(data: Buffer): Promise<unknown>; close(): Promise<void> }) {}

  static async open(conn: LibvirtConnection, uuid: string): Promise<ConsoleWatch> {
    const stream = await conn.domainOpenConsole(uuid, { force: true });
    const watch = new ConsoleWatch(stream);
    stream.onData((data) => (watch.text += data.toString('latin1')));
    return watch;
  }

  /** Types `line` into the console. */
  async type(line: string): Promise<void> {
    await this.stream.write(Buffer.from(`${line}\n`, 'latin1'));
  }

  close(): Promise<void> {
    return this.stream.close();
  }
}

export interface FirstLines {
  /** Peer address → n of the first `sent` line to it. */
  sent: Map<string, number>;
  /** Sender name → prev of the first `recv` line from it. */
  received: Map<string, number>;
}

/**
 * Typed into a console shell: prints "VFM have from=<name> n=<n>" for each peer the guest has
 * received from, out of the file vf-messages-recv keeps (the typed line itself does not match).
 */
export const HAVE_COMMAND =
  'for f in /tmp/vfmsg/recv-*; do echo "VFM have from=${f#/tmp/vfmsg/recv-} n=$(cat $f)"; done';

/**
 * The first `sent` line per peer, and per sender what the receiver had received as restored:
 * the `prev` of its first `recv` line, or, when a `have` line (HAVE_COMMAND) comes first, its n
 * (nothing was received from that sender since the restore, so the file holds what was).
 */
export function firstLines(text: string): FirstLines {
  const sent = new Map<string, number>();
  const received = new Map<string, number>();
  const line =
    /VFM (?:sent to=([0-9.]+) n=(\d+)|recv from=([a-z0-9-]+) n=\d+ prev=(\d+)|have from=([a-z0-9-]+) n=(\d+))\r?\n/g;
  for (const match of text.matchAll(line)) {
    const [, to, n, from, prev, haveFrom, have] = match;
    if (to !== undefined && !sent.has(to)) sent.set(to, Number(n));
    if (from !== undefined && !received.has(from)) received.set(from, Number(prev));
    if (haveFrom !== undefined && !received.has(haveFrom)) received.set(haveFrom, Number(have));
  }
  return { sent, received };
}

export interface PairCheck {
  from: string;
  to: string;
  /** What the sender had sent as restored, at most: the first message after the restore less one. */
  sentUpTo: number;
  /** What the receiver had received from the sender as restored. */
  receivedUpTo: number;
}

/**
 * Every ordered pair of `guests` (name → LAN address), or those `only` names, from the first
 * lines of their consoles; undefined while a console has not shown both lines of a pair yet.
 */
export function pairChecks(
  guests: Map<string, string>,
  lines: Map<string, FirstLines>,
  only?: Array<[from: string, to: string]>,
): PairCheck[] | undefined {
  const checks: PairCheck[] = [];
  for (const [from] of guests)
    for (const [to, toAddress] of guests) {
      if (from === to || (only && !only.some(([f, t]) => f === from && t === to))) continue;
      const sent = lines.get(from)?.sent.get(toAddress);
      const received = lines.get(to)?.received.get(from);
      if (sent === undefined || received === undefined) return undefined;
      checks.push({ from, to, sentUpTo: sent - 1, receivedUpTo: received });
    }
  return checks;
}
