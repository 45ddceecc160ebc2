// The rig's tiny guest: where its kernel and initramfs are (built by
// test/rig/build-guest.sh, cached by its inputs), domain specs for it on a rig
// host, its serial log, and a client for its command server on ttyS1.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { guestImage } from '../../src/devstack/guest-image.js';
import { guestDomainXml, type GuestDomainSpec } from './domain-xml.js';
import { GUEST_PRIVATE_DIR, type Rig, type RigHost } from './rig.js';

export const READY_MARKER = /VIRTFLEET-GUEST-READY uptime=([0-9.]+)/;

export { guestImage, type GuestImage } from '../../src/devstack/guest-image.js';

export interface Guest {
  name: string;
  uuid: string;
  /** In the rig's shared directory; appended to, so a migrated guest keeps one log. */
  serialLog: string;
  /** The command server's socket on `host` (each host has its own). */
  commandSocket(host: RigHost): string;
  xml: string;
}

/**
 * A guest on the rig: its serial log in the shared directory (every host
 * sees it), its command socket in each host's private directory (QEMU
 * removes its socket when it exits, which after a migration would remove
 * the destination's if they shared a path).
 */
export async function guestOnRig(rig: Rig, name: string, extra: Partial<GuestDomainSpec> = {}): Promise<Guest> {
  if (!/^[a-z0-9-]{1,40}$/.test(name)) throw new Error(`guest name ${JSON.stringify(name)}: use [a-z0-9-], at most 40`);
  const { kernel, initrd } = await guestImage();
  const dir = join(rig.sharedDir, 'guests');
  const spec: GuestDomainSpec = {
    name,
    uuid: randomUUID(),
    kernel,
    initrd,
    serialLog: join(dir, `${name}.serial.log`),
    commandSocket: `${GUEST_PRIVATE_DIR}/${name}.cmd.sock`,
    ...extra,
  };
  const socket = spec.commandSocket;
  return {
    name,
    uuid: spec.uuid,
    serialLog: spec.serialLog,
    commandSocket: (host) => {
      if (!socket) throw new Error(`guest ${name} has no command socket`);
      return host.privatePath(socket);
    },
    xml: guestDomainXml(spec),
  };
}

/**
 * Waits until `pattern` appears in the file (the guest's serial log) and
 * returns the match; rejects after `timeoutMs` with the file's tail.
 */
export async function waitForFileMatch(file: string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    const match = text.match(pattern);
    if (match) return match;
    if (Date.now() > deadline) {
      throw new Error(`${pattern} not seen in ${file} within ${timeoutMs} ms; it ends with:\n${text.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The guest's command server on ttyS1 (a UNIX socket on the host's side). */
export class GuestShell {
  private buffer = '';
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.waiter?.();
    });
  }

  static connect(path: string): Promise<GuestShell> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new GuestShell(socket)));
      socket.once('error', reject);
    });
  }

  /** Runs one line with the guest's sh; resolves with its output and exit code. */
  async run(command: string, timeoutMs = 10_000): Promise<{ output: string; rc: number }> {
    if (command.includes('\n')) throw new Error('one line per command');
    this.buffer = '';
    this.socket.write(`${command}\n`);
    const end = /VIRTFLEET-CMD-END rc=(\d+)\n/;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.buffer.match(end);
      if (match) {
        const output = this.buffer.slice(0, match.index);
        this.buffer = this.buffer.slice((match.index ?? 0) + match[0].length);
        return { output, rc: Number(match[1]) };
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `guest command ${JSON.stringify(command)} gave no answer in ${timeoutMs} ms; got ${JSON.stringify(this.buffer)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
