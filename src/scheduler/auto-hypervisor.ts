// The rule table for `hypervisor: auto`: which hypervisor a workload prefers.
//
// | workload | prefers | why                                                          |
// | compute  | kvm     | hardware-assisted CPU virtualisation, host-passthrough CPUs  |
// | io       | xen     | paravirtual I/O paths and driver domains keep I/O off dom0   |
// | general  | kvm     | the common case; widest device and tooling support           |
//
// The preferred type is used when one of its hosts fits; otherwise the
// other type, and the reason says so. A pool may override the table
// (HostPool spec.scheduling.autoHypervisor, merged over this one).
export type HypervisorType = 'kvm' | 'xen';
export type Workload = 'compute' | 'io' | 'general';

export type AutoHypervisorRules = Record<Workload, HypervisorType>;

export const DEFAULT_AUTO_RULES: AutoHypervisorRules = { compute: 'kvm', io: 'xen', general: 'kvm' };

export function preferenceOrder(
  workload: Workload,
  rules: AutoHypervisorRules = DEFAULT_AUTO_RULES,
): [HypervisorType, HypervisorType] {
  const preferred = rules[workload];
  return [preferred, preferred === 'kvm' ? 'xen' : 'kvm'];
}
