// Which VNC targets `virtfleet api` may open itself (a UNIX socket only on its own machine), and
// the viewer commands `virtfleet vm vnc` prints.
import { describe, expect, it } from '@jest/globals';
import { uriIsLocal } from '../../src/apiserver/vnc.js';
import { viewerCommands } from '../../src/cli/vnc.js';

describe('uriIsLocal', () => {
  it.each([
    ['qemu:///system', true],
    ['qemu:///session', true],
    ['qemu+unix:///system', true],
    ['qemu+unix:///system?socket=/run/libvirt/libvirt-sock', true],
    ['test:///default', true],
    ['qemu+tcp://10.250.1.2/system', false],
    ['qemu+ssh://root@host-a/system', false],
    ['qemu+tls://host-a.example/system', false],
    ['qemu+tcp://localhost/system', false],
    ['not a uri', false],
  ])('%s → %s', (uri, local) => {
    expect(uriIsLocal(uri)).toBe(local);
  });
});

describe('viewerCommands', () => {
  it('names the port for vncviewer (host::port) and remote-viewer (vnc://host:port)', () => {
    expect(viewerCommands('127.0.0.1', 5901)).toEqual([
      'vncviewer 127.0.0.1::5901',
      'remote-viewer vnc://127.0.0.1:5901',
    ]);
  });

  it('brackets an IPv6 address', () => {
    expect(viewerCommands('::1', 40000)).toEqual(['vncviewer [::1]::40000', 'remote-viewer vnc://[::1]:40000']);
  });
});
