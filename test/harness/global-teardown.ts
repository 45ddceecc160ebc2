// Stops the control plane that global-setup started, failed tests or not.
import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const started = globalThis.__virtfleetControlPlane;
  if (!started) return;
  await started.plane.stop();
  if (!process.env.VIRTFLEET_KEEP_STATE) rmSync(started.stateDir, { recursive: true, force: true });
  globalThis.__virtfleetControlPlane = undefined;
}
