// The guest's serial console, read through the binding.
import type { LibvirtConnection } from '../../src/hypervisors/libvirt/native/index.js';
import { READY_MARKER } from './guest.js';

/**
 * Opens the domain's serial console (force: taking it from any other reader) and waits for the
 * guest's ready marker; resolves with the marker's line. The console is closed either way.
 */
export async function readyMarker(conn: LibvirtConnection, uuid: string, timeoutMs: number): Promise<string> {
  const console = await conn.domainOpenConsole(uuid, { force: true });
  let output = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ready marker within ${timeoutMs} ms; console said:\n${output.slice(-2000)}`)),
        timeoutMs,
      );
      console.onData((data) => {
        output += data.toString('latin1');
        const match = READY_MARKER.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[0]);
        }
      });
    });
  } finally {
    await console.close();
  }
}
