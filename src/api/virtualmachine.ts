// VirtualMachine: what one VM should be (spec) and what it is (status).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  ABSOLUTE_PATH,
  HYPERVISORS,
  AGE_COLUMN,
  HTTP_URL,
  INTERFACE_NAME,
  LIBVIRT_NAME,
  SINGLE_LINE,
  bool,
  conditionColumn,
  conditions,
  definePattern,
  dnsLabel,
  dnsSubdomain,
  int,
  labelSelector,
  listOf,
  localObjectReference,
  matching,
  namedList,
  obj,
  oneOf,
  quantity,
  str,
  type ResourceDefinition,
} from './common.js';
import { CloudInit } from './cloud-init.js';
import { isQuantity, quantityWithin } from './quantity.js';
import { celExactlyOne, celRegex, countSet, withRules } from './rules.js';

export const RUN_STRATEGIES = ['Always', 'RerunOnFailure', 'Manual', 'Halted'] as const;
/** spec.placement.antiAffinityMode: a hard rule (KubeVirt's requiredDuring…) or a preference (preferredDuring…). */
export const ANTI_AFFINITY_MODES = ['Required', 'Preferred'] as const;
export const VM_PHASES = [
  'Pending',
  'Provisioning',
  'Installing',
  'Running',
  'Stopped',
  'Paused',
  /** Saved to the host's disk by `virtfleet vm suspend` (libvirt managed save): no QEMU process. */
  'Suspended',
  'Migrating',
  'CrashLoopBackOff',
  'Failed',
  'Terminating',
  'Unknown',
] as const;

const CPU_MODEL = definePattern(
  '^[A-Za-z0-9_.-]+$',
  64,
  (v) =>
    `${JSON.stringify(v)} is not a CPU model name (host-passthrough, host-model, or a libvirt model such as Skylake-Server)`,
);
const MAC_ADDRESS = definePattern(
  '^[0-9A-Fa-f][02468ACEace](:[0-9A-Fa-f]{2}){5}$',
  17,
  (v) =>
    `${JSON.stringify(v)} is not a unicast MAC address (six ':'-separated hex pairs, first octet even, e.g. 52:54:00:12:34:56)`,
);
const HTTP_PATH = definePattern(
  "^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$",
  2048,
  (v) => `${JSON.stringify(v)} is not an HTTP path (starts with '/', no spaces or control characters)`,
);

const MIN_MEMORY = '16Mi';
const MAX_MEMORY = '16Ti';
const MIN_DISK = '1Mi';
// The controller hands libvirt a disk's size as a number of bytes (exact in a JavaScript number
// up to 2^53) and libvirt reads it as an unsigned long long: 1Pi (2^50) is far beyond any real
// disk and well inside both. Larger values (99e99, 8Ei) failed only on the host, for ever.
const MAX_DISK = '1Pi';
// A whole number of bytes, written so that no arithmetic is needed to see it: digits, then a
// binary or decimal multiplier or a positive exponent. CEL has no exact test for a fractional
// quantity (quantity().isInteger() depends on how the API server happens to store the value, and
// says false for 100Ti), so the form is the rule. RE2 and JavaScript read it the same way.
const WHOLE_BYTES = '^\\+?[0-9]+([KMGTPE]i|[kMGTPE]|[eE]\\+?[0-9]+)?$';
const MAX_VCPUS = 512;

const Cpu = withRules(
  obj(
    'CPU topology and model. The guest gets cores × sockets × threads vCPUs.',
    {
      cores: int('Cores per socket.', { minimum: 1, maximum: 256, default: 1 }),
      sockets: int('CPU sockets.', { minimum: 1, maximum: 16, default: 1 }),
      threads: int('Threads per core.', { minimum: 1, maximum: 8, default: 1 }),
      model: Type.Optional(
        matching(
          'CPU model: host-passthrough (the host CPU as is; blocks migration between different CPUs), host-model ' +
            '(the closest named model), or a libvirt CPU model name such as Skylake-Server. Unset: the hypervisor default.',
          CPU_MODEL,
        ),
      ),
    },
    { default: {} },
  ),
  [
    {
      id: 'vm-cpu-total',
      cel: `self.cores * self.sockets * self.threads <= ${MAX_VCPUS}`,
      message: `cores * sockets * threads must be at most ${MAX_VCPUS} vCPUs`,
      holds: (cpu) => cpu.cores * cpu.sockets * cpu.threads <= MAX_VCPUS,
    },
  ],
);

/** What a VM without cpu (and without a template that sets it) gets: the 1 core the CRD used to default. */
export const DEFAULT_CPU = { cores: 1, sockets: 1, threads: 1 } as const;

/** A schema node without its `default` (a field a template may set must stay unset when the VM does not set it). */
function withoutDefault<T extends TSchema>(schema: T): T {
  const { default: _default, ...rest } = schema;
  return rest as T;
}

const Memory = withRules(
  quantity(`Guest memory as a Kubernetes quantity, e.g. 512Mi or 4Gi; between ${MIN_MEMORY} and ${MAX_MEMORY}.`),
  [
    {
      id: 'vm-memory-bounds',
      cel:
        `!isQuantity(self) || (quantity(self).compareTo(quantity('${MIN_MEMORY}')) >= 0 && ` +
        `quantity(self).compareTo(quantity('${MAX_MEMORY}')) <= 0)`,
      message: `memory must be between ${MIN_MEMORY} and ${MAX_MEMORY} (binary suffixes: Mi, Gi, Ti; a lone m means milli)`,
      // Like the CEL guard, leave strings that are not quantities to the pattern check.
      holds: (memory) => !isQuantity(memory) || quantityWithin(memory, MIN_MEMORY, MAX_MEMORY),
    },
  ],
);

const Firmware = withRules(
  obj(
    'Firmware the guest boots with.',
    {
      type: oneOf('bios (SeaBIOS) or uefi (OVMF).', ['bios', 'uefi'], { default: 'bios' }),
      secureBoot: bool('Enable UEFI Secure Boot; needs type uefi.', false),
    },
    { default: {} },
  ),
  [
    {
      id: 'vm-secure-boot-needs-uefi',
      cel: "!self.secureBoot || self.type == 'uefi'",
      message: 'secureBoot needs UEFI firmware: set firmware.type to uefi, or secureBoot to false',
      fieldPath: '.secureBoot',
      holds: (firmware) => !firmware.secureBoot || firmware.type === 'uefi',
    },
  ],
);

const Xen = obj('Xen-only settings; refused when spec.hypervisor is kvm.', {
  mode: oneOf('hvm (fully virtualized) or pv (paravirtualized; needs a PV-capable guest kernel).', ['hvm', 'pv'], {
    default: 'hvm',
  }),
});

/** A '.' or '..' segment in a path. */
const DOT_SEGMENT = '(^|/)\\.\\.?(/|$)';

/** A file on the host, named without '.' or '..' segments (libvirt would open another file than the one shown). */
const hostFile = (description: string) =>
  withRules(matching(description, ABSOLUTE_PATH), [
    {
      id: 'vm-host-file-no-dot-segments',
      cel: `!self.matches(${celRegex(DOT_SEGMENT)})`,
      message:
        "the path may not contain '.' or '..' segments: give the file's own absolute path, e.g. /var/lib/virtfleet/boot/vmlinuz",
      holds: (path) => !new RegExp(DOT_SEGMENT, 'u').test(path),
    },
  ]);

const KernelBoot = obj('Direct kernel boot: start the guest from a kernel and initrd on the host instead of a disk.', {
  kernel: hostFile("Absolute path of the kernel image on the host, without '.' or '..' segments."),
  initrd: Type.Optional(hostFile("Absolute path of the initial ramdisk on the host, without '.' or '..' segments.")),
  cmdline: Type.Optional(matching('Kernel command line; one line, no control characters.', SINGLE_LINE)),
});

const DiskSource = withRules(
  obj("Where the disk's first content comes from; set exactly one of blank, image or clone.", {
    blank: Type.Optional(obj('An empty disk of the given size.', {})),
    image: Type.Optional(
      withRules(
        obj('A disk image: downloaded from a URL (qcow2 or raw), or a VirtualMachineImage by name; set url or name.', {
          url: Type.Optional(matching('http:// or https:// URL of the image.', HTTP_URL)),
          name: Type.Optional(
            dnsSubdomain(
              "A VirtualMachineImage in the VM's namespace, Ready in the VM's HostPool: the disk is a linked clone of it (a qcow2 overlay, no copy).",
            ),
          ),
          copy: Type.Optional(bool('With name: a full copy of the image instead of a linked clone.')),
        }),
        [
          {
            id: 'vm-disk-image-url-or-name',
            cel: celExactlyOne(['url', 'name']),
            message: 'set exactly one of url or name',
            holds: (image) => countSet(image, ['url', 'name']) === 1,
          },
          {
            id: 'vm-disk-image-copy-needs-name',
            cel: '!has(self.copy) || has(self.name)',
            message: 'copy applies to an image by name: remove copy, or use name',
            fieldPath: '.copy',
            reason: 'FieldValueForbidden',
            holds: (image) => image.copy === undefined || image.name !== undefined,
          },
        ],
      ),
    ),
    clone: Type.Optional(
      obj('A copy of an existing volume in a libvirt storage pool on the host.', {
        volume: matching('Name of the volume to copy.', LIBVIRT_NAME),
        pool: Type.Optional(
          matching("Storage pool of that volume; defaults to the HostPool's spec.storage.pool.", LIBVIRT_NAME),
        ),
      }),
    ),
  }),
  [
    {
      id: 'vm-disk-one-source',
      cel: celExactlyOne(['blank', 'image', 'clone']),
      message: 'set exactly one of blank, image or clone',
      holds: (source) => countSet(source, ['blank', 'image', 'clone']) === 1,
    },
  ],
);

const Disk = withRules(
  obj("A virtual disk, backed by a volume the controller creates in the host's storage pool.", {
    name: dnsLabel('Name of the disk, unique within the VM; also names its volume.'),
    size: Type.Optional(
      withRules(
        quantity(
          `Capacity in whole bytes, e.g. 20Gi or 1536Mi (no fractions such as 1.5Gi, no m); between ${MIN_DISK} and ${MAX_DISK}. ` +
            'Required for blank disks; grows image and clone disks.',
        ),
        [
          {
            id: 'vm-disk-min-size',
            cel: `!isQuantity(self) || quantity(self).compareTo(quantity('${MIN_DISK}')) >= 0`,
            message: `size must be at least ${MIN_DISK}`,
            holds: (size) => !isQuantity(size) || quantityWithin(size, MIN_DISK),
          },
          {
            id: 'vm-disk-max-size',
            cel: `!isQuantity(self) || quantity(self).compareTo(quantity('${MAX_DISK}')) <= 0`,
            message: `size must be at most ${MAX_DISK} (1125899906842624 bytes, the largest disk virtfleet creates): give a smaller size, e.g. 10Ti`,
            holds: (size) => !isQuantity(size) || quantityWithin(size, undefined, MAX_DISK),
          },
          {
            id: 'vm-disk-whole-bytes',
            cel: `!isQuantity(self) || self.matches(${celRegex(WHOLE_BYTES)})`,
            message:
              'size must be a whole number of bytes, written as digits with an optional suffix (Ki, Mi, Gi, Ti, Pi or k, M, G, T, P): ' +
              'e.g. 1536Mi instead of 1.5Gi; no fractions, no m (milli)',
            holds: (size) => !isQuantity(size) || new RegExp(WHOLE_BYTES, 'u').test(size),
          },
        ],
      ),
    ),
    type: Type.Optional(
      oneOf(
        'disk (the default) or cdrom: a read-only CD-ROM holding an ISO 9660 VirtualMachineImage (source.image.name), its volume attached as it is (nothing copied); on SATA (IDE for Xen HVM guests), or SCSI with bus: scsi.',
        ['disk', 'cdrom'],
      ),
    ),
    bus: oneOf('Bus the guest sees the disk on.', ['virtio', 'sata', 'scsi'], { default: 'virtio' }),
    bootOrder: Type.Optional(
      int("Boot priority among the VM's disks, 1 first; unique within the VM.", { minimum: 1, maximum: 32 }),
    ),
    readOnly: bool('Attach the disk read-only.', false),
    retain: bool("Keep the disk's volume on the host when the VM is deleted (it is deleted by default).", false),
    source: DiskSource,
  }),
  [
    {
      id: 'vm-cdrom-from-image',
      cel: "!has(self.type) || self.type != 'cdrom' || (has(self.source.image) && has(self.source.image.name))",
      message: 'a cdrom shows an ISO image: set source.image.name to a VirtualMachineImage',
      fieldPath: '.source',
      reason: 'FieldValueInvalid',
      holds: (disk) => disk.type !== 'cdrom' || disk.source?.image?.name !== undefined,
    },
    {
      id: 'vm-cdrom-no-copy',
      cel: "!has(self.type) || self.type != 'cdrom' || !has(self.source.image) || !has(self.source.image.copy)",
      message: "a cdrom uses the image's volume read-only, never a copy: remove source.image.copy",
      fieldPath: '.source.image.copy',
      reason: 'FieldValueForbidden',
      holds: (disk) => disk.type !== 'cdrom' || disk.source?.image?.copy === undefined,
    },
    {
      id: 'vm-cdrom-no-size',
      cel: "!has(self.type) || self.type != 'cdrom' || !has(self.size)",
      message: 'a cdrom has the size of its image: remove size',
      fieldPath: '.size',
      reason: 'FieldValueForbidden',
      holds: (disk) => disk.type !== 'cdrom' || disk.size === undefined,
    },
    {
      id: 'vm-blank-disk-needs-size',
      cel: '!has(self.source) || !has(self.source.blank) || has(self.size)',
      message: 'a blank disk needs a size, e.g. size: 20Gi',
      fieldPath: '.size',
      reason: 'FieldValueRequired',
      holds: (disk) => disk.source?.blank === undefined || disk.size !== undefined,
    },
  ],
);

const Network = withRules(
  obj("A network interface. With neither network nor bridge it joins the HostPool's spec.network.name.", {
    name: dnsLabel('Name of the interface, unique within the VM.'),
    network: Type.Optional(matching('libvirt network to join.', LIBVIRT_NAME, { maxLength: 64 })),
    bridge: Type.Optional(matching('Host bridge to join, e.g. br0.', INTERFACE_NAME)),
    model: oneOf('NIC model the guest sees.', ['virtio', 'e1000', 'rtl8139'], { default: 'virtio' }),
    macAddress: Type.Optional(matching('Unicast MAC address; generated when unset.', MAC_ADDRESS)),
  }),
  [
    {
      id: 'vm-network-or-bridge',
      cel: '!(has(self.network) && has(self.bridge))',
      message: 'set network or bridge, not both',
      fieldPath: '.bridge',
      reason: 'FieldValueForbidden',
      holds: (nic) => !(nic.network !== undefined && nic.bridge !== undefined),
    },
  ],
);

const HealthCheck = withRules(
  obj('How to tell that the guest works; set exactly one of guestAgent, tcp or http.', {
    guestAgent: Type.Optional(obj('Probe the QEMU guest agent (guest-ping); the guest must run qemu-guest-agent.', {})),
    tcp: Type.Optional(
      obj('Open a TCP connection to the guest.', {
        port: int('TCP port in the guest.', { minimum: 1, maximum: 65535 }),
      }),
    ),
    http: Type.Optional(
      obj('Send an HTTP GET to the guest; any 2xx or 3xx status is healthy.', {
        port: int('TCP port in the guest.', { minimum: 1, maximum: 65535 }),
        path: matching('Request path.', HTTP_PATH, { default: '/' }),
        scheme: oneOf('HTTP or HTTPS (certificates are not verified).', ['HTTP', 'HTTPS'], { default: 'HTTP' }),
      }),
    ),
    initialDelaySeconds: int('Seconds after the guest starts before the first probe.', {
      minimum: 0,
      maximum: 3600,
      default: 0,
    }),
    periodSeconds: int('Seconds between probes.', { minimum: 1, maximum: 3600, default: 10 }),
    timeoutSeconds: int('Seconds a probe may take; less than periodSeconds.', {
      minimum: 1,
      maximum: 3600,
      default: 1,
    }),
    failureThreshold: int(
      'Consecutive failed probes after which Ready turns False (Unhealthy) and, under runStrategy Always or RerunOnFailure, the VM is restarted through the crash back-off.',
      {
        minimum: 1,
        maximum: 100,
        default: 3,
      },
    ),
  }),
  [
    {
      id: 'vm-health-one-probe',
      cel: celExactlyOne(['guestAgent', 'tcp', 'http']),
      message: 'set exactly one probe: guestAgent, tcp or http',
      holds: (check) => countSet(check, ['guestAgent', 'tcp', 'http']) === 1,
    },
    {
      id: 'vm-health-timeout-below-period',
      cel: 'self.timeoutSeconds < self.periodSeconds',
      message: 'timeoutSeconds must be less than periodSeconds',
      fieldPath: '.timeoutSeconds',
      holds: (check) => check.timeoutSeconds < check.periodSeconds,
    },
  ],
);

const RestartBackoff = withRules(
  obj(
    'Delay between restarts after crashes and failed health checks: the first failure after a stable run restarts at once, each further one in a row waits initialSeconds, doubling up to maxSeconds (minus up to 10 % jitter); a run of twice maxSeconds (at most 10 min) starts over.',
    {
      initialSeconds: int('First delay.', { minimum: 1, maximum: 3600, default: 1 }),
      maxSeconds: int('Longest delay.', { minimum: 1, maximum: 86400, default: 300 }),
    },
    { default: {} },
  ),
  [
    {
      id: 'vm-backoff-order',
      cel: 'self.initialSeconds <= self.maxSeconds',
      message: 'initialSeconds must not exceed maxSeconds',
      fieldPath: '.initialSeconds',
      holds: (backoff) => backoff.initialSeconds <= backoff.maxSeconds,
    },
  ],
);

const Recovery = obj(
  'What the VM controller does when the VM crashes, fails its health check, or loses its host (the power, health and recovery steps of its reconcile).',
  {
    restartBackoff: RestartBackoff,
    evacuate: bool(
      "Restart the VM on another host when its host fails (only once the host's fencing command confirmed the power-off).",
      true,
    ),
    priority: int(
      'Order of evacuations: when a failed host is fenced, its VMs are taken up highest first, so they take the free capacity first. Crash and health-check restarts do not look at it (each follows its own back-off).',
      { minimum: -1000, maximum: 1000, default: 0 },
    ),
  },
  { default: {} },
);

const Placement = obj('Constraints on which host runs the VM.', {
  hostSelector: Type.Optional(labelSelector('Only hosts whose labels (spec.hosts[].labels in the HostPool) match.')),
  antiAffinityGroup: Type.Optional(
    dnsLabel(
      'VMs in the same group are placed on different hosts: how strictly is antiAffinityMode. The group is checked when the VM is placed (first placement, evacuation, migration), not afterwards.',
    ),
  ),
  antiAffinityMode: oneOf(
    'With antiAffinityGroup: Required (a host that already runs a VM of the group is never chosen; the VM stays unscheduled instead) or Preferred (such a host is chosen only when no other host of the same hypervisor fits, and status.hypervisorReason says so).',
    ANTI_AFFINITY_MODES,
    { default: 'Required' },
  ),
});

export const VirtualMachineSpecSchema = withRules(
  obj('The desired state of the VM.', {
    hostPoolRef: localObjectReference(
      'The HostPool whose hosts may run the VM.',
      'Name of the (cluster-scoped) HostPool.',
    ),
    placement: Type.Optional(Placement),
    hypervisor: oneOf(
      "kvm, xen, or auto: let the scheduler choose from the pool's hosts and spec.workload (the choice and its reason go to status).",
      ['kvm', 'xen', 'auto'],
      { default: 'auto' },
    ),
    workload: oneOf(
      'What the VM mostly does; guides the choice when hypervisor is auto.',
      ['compute', 'io', 'general'],
      {
        default: 'general',
      },
    ),
    runStrategy: oneOf(
      'Always: keep running; RerunOnFailure: restart only after a failure; Manual: start and stop only on request; Halted: keep stopped.',
      RUN_STRATEGIES,
      { default: 'Always' },
    ),
    templateRef: Type.Optional(
      localObjectReference(
        "A VirtualMachineTemplate in the VM's namespace whose fields the VM takes where it sets none of its own " +
          '(memory, cpu, disks, networks, cloudInit, install, graphics; disks and networks by name). status.template says what it took.',
        'Name of the VirtualMachineTemplate.',
      ),
    ),
    // Neither defaulted here: a template may set them (without one, cpu is 1 core and memory is required).
    cpu: Type.Optional(withoutDefault(Cpu)),
    memory: Type.Optional(Memory),
    firmware: Firmware,
    xen: Type.Optional(Xen),
    kernelBoot: Type.Optional(KernelBoot),
    disks: Type.Optional(namedList('Virtual disks, by name.', Disk, { maxItems: 32 })),
    networks: Type.Optional(namedList('Network interfaces, by name.', Network, { maxItems: 16 })),
    install: Type.Optional(
      obj('Install an OS on first boot; later boots start from disk.', {
        profileRef: localObjectReference("The InstallProfile to install, in the VM's namespace."),
      }),
    ),
    cloudInit: Type.Optional(CloudInit),
    healthCheck: Type.Optional(HealthCheck),
    recovery: Recovery,
    graphics: Type.Optional(
      obj(
        "A graphical console: a VNC server for the VM's display, listening where the HostPool's spec.graphics says; " +
          'reached through `virtfleet vm vnc` (status.graphics says where it listens).',
        { type: oneOf('The remote display protocol; vnc is the only one so far.', ['vnc'], { default: 'vnc' }) },
      ),
    ),
  }),
  [
    {
      id: 'vm-memory-or-template',
      cel: 'has(self.memory) || has(self.templateRef)',
      message: 'set memory (e.g. 1Gi), or name a VirtualMachineTemplate that sets it in templateRef',
      fieldPath: '.memory',
      reason: 'FieldValueRequired',
      holds: (spec) => spec.memory !== undefined || spec.templateRef !== undefined,
    },
    {
      id: 'vm-xen-settings-need-xen',
      cel: "!has(self.xen) || self.hypervisor != 'kvm'",
      message: 'spec.xen applies only to Xen guests: remove spec.xen, or set spec.hypervisor to xen or auto',
      fieldPath: '.xen',
      reason: 'FieldValueForbidden',
      holds: (spec) => spec.xen === undefined || spec.hypervisor !== 'kvm',
    },
    {
      id: 'vm-xen-pv-without-uefi',
      cel: "!has(self.xen) || self.xen.mode != 'pv' || self.firmware.type != 'uefi'",
      message: 'Xen PV guests boot without firmware: set firmware.type to bios, or xen.mode to hvm',
      fieldPath: '.xen.mode',
      holds: (spec) => spec.xen?.mode !== 'pv' || spec.firmware.type !== 'uefi',
    },
    {
      id: 'vm-boot-order-unique',
      cel:
        '!has(self.disks) || self.disks.all(d, !has(d.bootOrder) || ' +
        'self.disks.exists_one(e, has(e.bootOrder) && e.bootOrder == d.bootOrder))',
      message: 'disks[].bootOrder values must be unique',
      fieldPath: '.disks',
      holds: (spec) => {
        const orders = (spec.disks ?? []).flatMap((disk) => (disk.bootOrder === undefined ? [] : [disk.bootOrder]));
        return new Set(orders).size === orders.length;
      },
    },
    {
      id: 'vm-install-needs-disk',
      cel: '!has(self.install) || (has(self.disks) && size(self.disks) > 0)',
      message: 'an install needs a disk to install onto: add one to spec.disks (e.g. a blank disk)',
      fieldPath: '.disks',
      reason: 'FieldValueRequired',
      holds: (spec) => spec.install === undefined || (spec.disks?.length ?? 0) > 0,
    },
    {
      id: 'vm-install-or-kernel-boot',
      cel: '!has(self.install) || !has(self.kernelBoot)',
      message: 'kernelBoot cannot be combined with install: the InstallProfile decides how the installer boots',
      fieldPath: '.kernelBoot',
      reason: 'FieldValueForbidden',
      holds: (spec) => spec.install === undefined || spec.kernelBoot === undefined,
    },
  ],
);

export const VirtualMachineStatusSchema = obj('The observed state of the VM, written by the controller.', {
  phase: Type.Optional(oneOf('A one-word summary for humans; conditions carry the details.', VM_PHASES)),
  host: Type.Optional(str('Name of the HostPool host the VM is placed on.', { maxLength: 63 })),
  hypervisor: Type.Optional(oneOf('The hypervisor the VM runs on.', HYPERVISORS)),
  hypervisorReason: Type.Optional(
    str('Why that hypervisor was chosen (mainly for hypervisor auto).', { maxLength: 1024 }),
  ),
  domainUUID: Type.Optional(str("UUID of the libvirt domain; equal to the object's metadata.uid.", { maxLength: 36 })),
  domainName: Type.Optional(str('Name of the libvirt domain on the host.', { maxLength: 253 })),
  addresses: Type.Optional(
    listOf(
      'IP addresses the guest reported.',
      obj('One address of one interface.', {
        interface: str('spec.networks[].name of the interface.', { maxLength: 63 }),
        ip: str('IPv4 or IPv6 address.', { maxLength: 45 }),
        mac: Type.Optional(str('MAC address of the interface.', { maxLength: 17 })),
      }),
      { maxItems: 64 },
    ),
  ),
  restarts: Type.Optional(int('How often the controller restarted the VM after failures.', { minimum: 0 })),
  migration: Type.Optional(
    obj(
      'A live migration under way (written before it starts, so a restarted controller can tell where the VM ended up).',
      {
        source: str('Host it leaves.', { maxLength: 63 }),
        target: str('Host it goes to.', { maxLength: 63 }),
        started: str('When it started (RFC 3339).', { format: 'date-time' }),
        storage: Type.Optional(
          oneOf(
            "What happens to the VM's disks: None (it has none), Shared (HostPool spec.storage.shared: nothing is copied) " +
              "or Copied (a host-local pool: the destination's volumes were made first and the disks are copied while the guest runs).",
            ['None', 'Shared', 'Copied'],
          ),
        ),
        dataTotalBytes: Type.Optional(
          int('Memory and copied disks to send in all, from the job statistics (grows as the guest dirties memory).', {
            minimum: 0,
          }),
        ),
        dataRemainingBytes: Type.Optional(int('Of dataTotalBytes, what is left to send.', { minimum: 0 })),
        diskTotalBytes: Type.Optional(int('With storage Copied: the disks to copy, in bytes.', { minimum: 0 })),
        diskRemainingBytes: Type.Optional(
          int('With storage Copied: what is left of the disks to copy.', { minimum: 0 }),
        ),
      },
    ),
  ),
  lastAction: Type.Optional(
    obj(
      'The last operation asked through the virtfleet.io/action annotation (virtfleet vm start|stop|…), and what came of it.',
      {
        id: str('virtfleet.io/action-id of the request.', { maxLength: 128 }),
        action: str('The action asked: start, stop, restart, pause, unpause, migrate, suspend or resume.', {
          maxLength: 32,
        }),
        state: oneOf(
          'InProgress, Succeeded, Failed (tried, did not work), or Refused (not tried; the message says why).',
          ['InProgress', 'Succeeded', 'Failed', 'Refused'],
        ),
        message: Type.Optional(str('What happened.', { maxLength: 1024 })),
        time: str('When the state last changed (RFC 3339).', { format: 'date-time' }),
      },
    ),
  ),
  graphics: Type.Optional(
    obj(
      "Where the running domain's VNC server listens (from its live definition on status.host); gone while it is not running.",
      {
        type: oneOf('The protocol.', ['vnc']),
        host: str('The host it listens on (spec.hosts[].name of the HostPool).', { maxLength: 63 }),
        address: Type.Optional(str('IP address it listens on (HostPool graphics.listen.network).', { maxLength: 45 })),
        port: Type.Optional(int('TCP port it listens on.', { minimum: 1, maximum: 65535 })),
        socket: Type.Optional(
          str('UNIX socket path on the host (HostPool graphics.listen.socket).', { maxLength: 1024 }),
        ),
      },
    ),
  ),
  template: Type.Optional(
    obj("What the VM took from its spec.templateRef (the VM's own fields win).", {
      name: str('The VirtualMachineTemplate.', { maxLength: 253 }),
      generation: int('Its metadata.generation the effective spec was made from.', { format: 'int64', minimum: 0 }),
      fields: listOf(
        'The spec fields that came from it, e.g. spec.memory, spec.disks[root], spec.cloudInit.',
        str('A field.', { maxLength: 128 }),
        { maxItems: 64 },
      ),
      effective: Type.Optional(
        obj('The effective values of the size fields.', {
          memory: str('spec.memory in effect.', { maxLength: 64 }),
          vcpus: int('cores × sockets × threads in effect.', { minimum: 1 }),
        }),
      ),
    }),
  ),
  conditions: Type.Optional(
    conditions(
      'Scheduled, Provisioned, Installed, Ready, RestartRequired, Healthy and Migrating, each for the generation it saw.',
    ),
  ),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
  ),
});

/** The spec as written (and as the API server returns it, defaults applied): cpu and memory may come from a template. */
export type RawVirtualMachineSpec = Static<typeof VirtualMachineSpecSchema>;
/**
 * The effective spec the controllers work from: the VM's own fields over its template's
 * (src/controllers/template/merge.ts), so cpu and memory are always there.
 */
export type VirtualMachineSpec = Omit<RawVirtualMachineSpec, 'cpu' | 'memory'> & {
  cpu: NonNullable<RawVirtualMachineSpec['cpu']>;
  memory: string;
};
export type VirtualMachineStatus = Static<typeof VirtualMachineStatusSchema>;
export type Disk = NonNullable<VirtualMachineSpec['disks']>[number];
export type NetworkInterface = NonNullable<VirtualMachineSpec['networks']>[number];

/** A VirtualMachine as the API server returns it: defaults applied. */
export interface RawVirtualMachine {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachine';
  metadata: V1ObjectMeta;
  spec: RawVirtualMachineSpec;
  status?: VirtualMachineStatus;
}

/** A VirtualMachine as the controllers see it: its effective spec (template merged). */
export interface VirtualMachine {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachine';
  metadata: V1ObjectMeta;
  spec: VirtualMachineSpec;
  status?: VirtualMachineStatus;
}

export const virtualMachineResource: ResourceDefinition = {
  kind: 'VirtualMachine',
  plural: 'virtualmachines',
  singular: 'virtualmachine',
  listKind: 'VirtualMachineList',
  shortNames: ['vm'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    'A virtual machine that virtfleet runs on one host of a HostPool (KVM or Xen through libvirt), ' +
    'restarts when it fails, and moves when its host fails.',
  spec: VirtualMachineSpecSchema,
  status: VirtualMachineStatusSchema,
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: "Summary of the VM's state." },
    { name: 'Host', type: 'string', jsonPath: '.status.host', description: 'Host the VM is placed on.' },
    { name: 'Hypervisor', type: 'string', jsonPath: '.status.hypervisor', description: 'kvm or xen.' },
    {
      name: 'IP',
      type: 'string',
      jsonPath: '.status.addresses[0].ip',
      description: 'First address the guest reported.',
    },
    conditionColumn('Ready', 'Whether the guest is up (and healthy, with a healthCheck).'),
    AGE_COLUMN,
  ],
};
