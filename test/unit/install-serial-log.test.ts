import { describe, expect, it } from '@jest/globals';
import { installerLogHint, installerSerialLog } from '../../src/controllers/install/serial-log.js';
import { buildDomainXml } from '../../src/hypervisors/domain-xml.js';
import { domainName } from '../../src/hypervisors/domain-name.js';
import { child, parseXml } from '../../src/hypervisors/xml.js';
import { UID, kvmInput, xenInput } from './domain-xml-matrix.js';

// The longest domain name there is: the path made from it must still pass the domain builder.
const longest = domainName('n'.repeat(63), 'v'.repeat(253), UID);

describe("the installer's serial log", () => {
  it("is in libvirt's log directory of the host's driver, by domain name; none for Xen PV", () => {
    expect(installerSerialLog('vf-default_rocky-1', 'kvm', undefined)).toBe(
      '/var/log/libvirt/qemu/vf-default_rocky-1.installer.log',
    );
    expect(installerSerialLog('vf-default_rocky-1', 'xen', 'hvm')).toBe(
      '/var/log/libvirt/libxl/vf-default_rocky-1.installer.log',
    );
    expect(installerSerialLog('vf-default_rocky-1', 'xen', 'pv')).toBeUndefined();
  });

  it('goes into the domain XML: a copy of the pty console on KVM, the serial port itself on Xen HVM', () => {
    const kvm = parseXml(
      buildDomainXml(kvmInput({ serialLogPath: installerSerialLog(longest, 'kvm', undefined) })).xml,
    );
    expect(child(kvm, 'devices', 'serial')?.attrs.type).toBe('pty');
    expect(child(kvm, 'devices', 'serial', 'log')?.attrs).toEqual({
      file: `/var/log/libvirt/qemu/${longest}.installer.log`,
      append: 'on',
    });
    const xen = parseXml(
      buildDomainXml(xenInput('hvm', { serialLogPath: installerSerialLog(longest, 'xen', 'hvm') })).xml,
    );
    expect(child(xen, 'devices', 'serial')?.attrs.type).toBe('file');
    expect(child(xen, 'devices', 'serial', 'source')?.attrs.path).toBe(
      `/var/log/libvirt/libxl/${longest}.installer.log`,
    );
  });

  it('is named in failure messages with the host, or the Xen PV alternative', () => {
    expect(installerLogHint('vf-a_b', 'kvm', undefined, 'qemu+ssh://kvm-1/system')).toBe(
      "the installer's serial console is in /var/log/libvirt/qemu/vf-a_b.installer.log on host qemu+ssh://kvm-1/system",
    );
    expect(installerLogHint('vf-a_b', 'xen', 'pv', 'xen+ssh://xen-1/')).toContain('xenconsoled');
  });
});
