// jest runs global setup outside its transform pipeline's module resolution,
// so the TypeScript harness is loaded through tsx.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { startControlPlane } = await tsImport('./control-plane.ts', import.meta.url);
  await startControlPlane();
}
