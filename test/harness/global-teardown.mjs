import { tsImport } from 'tsx/esm/api';

export default async function globalTeardown() {
  const { stopControlPlane } = await tsImport('./control-plane.ts', import.meta.url);
  await stopControlPlane();
}
