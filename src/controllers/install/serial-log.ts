// Where an installer's serial console is copied to on its host, so that an install that failed
// or timed out can be read afterwards (the installer runs with console=ttyS0, and its domain is
// redefined or destroyed once the install ends, so `virsh console` alone would come too late).
//
// In libvirt's own per-driver log directory, next to the domain's QEMU log: it exists on every
// host with that driver, and libvirt's security drivers (AppArmor's virt-aa-helper, SELinux's
// virt_log_t) already let the hypervisor write there. KVM copies the pty console to the file
// (<log file append='on'>), so `virsh console` keeps working; Xen HVM has no such copy, so its
// serial port writes to the file instead of a pty during the install. Xen PV guests have no
// serial port: their console is logged by xenconsoled, if the host enables it.
import type { HypervisorType } from '../../scheduler/auto-hypervisor.js';

const LOG_DIRS: Record<HypervisorType, string> = {
  kvm: '/var/log/libvirt/qemu',
  xen: '/var/log/libvirt/libxl',
};

/** The installer's serial log on its host, or undefined where none can be kept (Xen PV). */
export function installerSerialLog(
  domainName: string,
  hypervisor: HypervisorType,
  xenMode: 'hvm' | 'pv' | undefined,
): string | undefined {
  if (hypervisor === 'xen' && xenMode === 'pv') return undefined;
  return `${LOG_DIRS[hypervisor]}/${domainName}.installer.log`;
}

/** Where to read what the installer printed, for failure messages. */
export function installerLogHint(
  domainName: string,
  hypervisor: HypervisorType | undefined,
  xenMode: 'hvm' | 'pv' | undefined,
  hostUri: string,
): string {
  const path = hypervisor ? installerSerialLog(domainName, hypervisor, xenMode) : undefined;
  return path
    ? `the installer's serial console is in ${path} on host ${hostUri}`
    : `a Xen PV installer has no serial log: see the host's xenconsoled log (${hostUri}, /var/log/xen/console/ when XENCONSOLED_TRACE=guest)`;
}
