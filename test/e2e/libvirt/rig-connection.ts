// For a describe block of binding tests on real hosts: a rig of one libvirtd
// host (test/rig), started before its tests, and a connection to that host;
// the connection is closed and the rig torn down after them.
//
//   const on = rigConnection();
//   it('…', async () => { await on.conn.defineXML(…); … on.rig.sharedDir … });
import { afterAll, beforeAll } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { Rig } from '../../rig/rig.js';

export interface RigConnection {
  /** Set in beforeAll. */
  rig: Rig;
  /** To rig.hosts[0]; set in beforeAll. */
  conn: LibvirtConnection;
}

export function rigConnection(): RigConnection {
  const on = {} as RigConnection;
  beforeAll(async () => {
    on.rig = await Rig.start({ hosts: 1 });
    on.conn = await LibvirtConnection.open(on.rig.hosts[0]!.uri);
  }, 120_000);
  afterAll(async () => {
    await on.conn?.close().catch(() => undefined);
    await on.rig?.teardown();
  }, 60_000);
  return on;
}
