// The installs under way in this process, by VM UID, and the PXE MACs they claim on each host.
// Ending a session revokes its token and deletes its iPXE script.
import type { InstallServer } from '../../provisioning/install-server.js';
import type { Logger } from '../../observability/logging.js';
import type { PxeHosts } from './pxe.js';
import type { Session } from './types.js';

export class InstallSessions {
  private readonly byUid = new Map<string, Session>();
  /**
   * By "<host URI> <MAC>": the VM whose iPXE script that is. Two installing VMs of one host with
   * the same MAC (set by the user) would overwrite each other's script: the second one waits.
   */
  readonly macs = new Map<string, string>();

  constructor(
    private readonly pxe: PxeHosts,
    private readonly logger: Logger,
    private readonly server: InstallServer | undefined,
  ) {}

  get(uid: string): Session | undefined {
    return this.byUid.get(uid);
  }

  set(uid: string, session: Session): void {
    this.byUid.set(uid, session);
  }

  /** The install of the VM ends (done, failed, gone): its token is revoked, its script deleted. */
  end(uid: string): void {
    const session = this.byUid.get(uid);
    this.byUid.delete(uid);
    this.server?.revoke(uid);
    const pxe = session?.pxe;
    if (pxe && this.macs.get(`${pxe.hypervisor.uri} ${pxe.mac}`) === uid)
      this.macs.delete(`${pxe.hypervisor.uri} ${pxe.mac}`);
    if (pxe) {
      // The token is revoked already; the script that carries it goes too (best effort: a
      // script left behind names a revoked token, and the next install of the MAC replaces it).
      this.pxe.deleteScript(pxe.hypervisor, pxe.mac).catch((error: unknown) => {
        this.logger.warn(
          { vm: session.key, host: pxe.hypervisor.uri, mac: pxe.mac, err: error },
          'cannot delete the iPXE script of an ended install',
        );
      });
    }
  }
}
