// The condition of each kind, as the API (its schema) types it: what callers read from an
// object's status.conditions and pass to src/runtime/conditions.ts without a cast.
import type { HostPoolStatus } from './hostpool.js';
import type { InstallProfileStatus } from './installprofile.js';
import type { VirtualMachineStatus } from './virtualmachine.js';

export type VirtualMachineCondition = NonNullable<VirtualMachineStatus['conditions']>[number];
export type HostPoolCondition = NonNullable<HostPoolStatus['conditions']>[number];
export type InstallProfileCondition = NonNullable<InstallProfileStatus['conditions']>[number];
