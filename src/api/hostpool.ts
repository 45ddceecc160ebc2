// HostPool: a set of libvirt hosts and how to use them. Cluster-scoped: pools are shared
// infrastructure, and VMs in any namespace refer to them by name.
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  ABSOLUTE_PATH,
  HYPERVISORS,
  AGE_COLUMN,
  LABEL_VALUE,
  LIBVIRT_NAME,
  SINGLE_LINE,
  bool,
  conditionColumn,
  conditions,
  definePattern,
  dnsLabel,
  int,
  listOf,
  mapOf,
  matching,
  namedList,
  num,
  obj,
  oneOf,
  quantity,
  secretReference,
  str,
  type ResourceDefinition,
} from './common.js';
import { celExactlyOne, countSet, withRules } from './rules.js';

/** libvirt URI schemes virtfleet connects with. `test` is libvirt's built-in simulated driver. */
export const URI_SCHEMES = [
  'qemu',
  'qemu+ssh',
  'qemu+tls',
  'qemu+tcp',
  'qemu+unix',
  'xen',
  'xen+ssh',
  'xen+tls',
  'test',
  'test+unix',
];

// The URI reaches libvirt (and, for +ssh, an ssh command line), so it is limited to URI
// characters that need no quoting: no whitespace, quotes, '$', '`', '\', '#', '<', '>', '|'.
const LIBVIRT_URI = definePattern(
  '^(qemu(\\+(ssh|tls|tcp|unix))?|xen(\\+(ssh|tls))?|test(\\+unix)?)://[A-Za-z0-9._~:/?@!&()*+,;=%\\[\\]-]*$',
  1024,
  (v) =>
    `${JSON.stringify(v)} is not a libvirt URI virtfleet can use: the scheme must be one of ${URI_SCHEMES.join(', ')} ` +
    `(e.g. qemu+ssh://root@host1/system or test:///default), with no spaces or quotes`,
);

const Fencing = withRules(
  obj("How to make sure a failed host's VMs are dead before they are started elsewhere.", {
    method: oneOf(
      "none: the host's VMs are never started elsewhere while it is down (they wait, saying why); " +
        'command: run spec.hosts[].fencing.command, and start them elsewhere once it exits 0.',
      ['none', 'command'],
      { default: 'none' },
    ),
    command: Type.Optional(
      listOf(
        'Program and arguments (argv, no shell) run by the controller to power off the host; exit 0 means fenced. ' +
          'The host name is passed in VIRTFLEET_HOST.',
        matching('One argument.', SINGLE_LINE, { maxLength: 1024 }),
        { minItems: 1, maxItems: 32 },
      ),
    ),
    secretRef: Type.Optional(secretReference('Secret whose keys are passed to the command as environment variables.')),
  }),
  [
    {
      id: 'hp-fencing-command-needs-command',
      cel: "self.method != 'command' || has(self.command)",
      message: 'fencing method command needs command: the program and its arguments',
      fieldPath: '.command',
      reason: 'FieldValueRequired',
      holds: (fencing) => fencing.method !== 'command' || fencing.command !== undefined,
    },
  ],
);

const Host = withRules(
  obj('One libvirt host.', {
    name: dnsLabel('Name of the host, unique within the pool; VMs report it in status.host.'),
    uri: matching(
      'libvirt connection URI, e.g. qemu+tls://host1.example/system, qemu+ssh://root@host1/system, xen+ssh://root@host2, ' +
        "or test:///default (libvirt's simulated driver).",
      LIBVIRT_URI,
    ),
    hypervisor: Type.Optional(
      oneOf(
        'The hypervisor the host runs, for drivers that cannot tell (test://). qemu URIs are kvm and xen URIs are xen.',
        HYPERVISORS,
      ),
    ),
    credentialsSecretRef: Type.Optional(
      secretReference(
        'Secret with connection credentials: ssh-privatekey and known_hosts for +ssh, or tls.crt, tls.key and ca.crt for +tls.',
      ),
    ),
    labels: Type.Optional(
      mapOf('Labels that VMs select hosts by (spec.placement.hostSelector).', matching('A label value.', LABEL_VALUE), {
        maxProperties: 64,
      }),
    ),
    maintenance: bool('Cordon the host and live-migrate its VMs away.', false),
    fencing: Type.Optional(Fencing),
  }),
  [
    {
      id: 'hp-uri-matches-hypervisor',
      cel:
        "!has(self.hypervisor) || !((self.uri.startsWith('xen') && self.hypervisor == 'kvm') || " +
        "(self.uri.startsWith('qemu') && self.hypervisor == 'xen'))",
      message:
        'hypervisor contradicts the URI: qemu URIs are kvm hosts and xen URIs are xen hosts; remove hypervisor or fix it',
      fieldPath: '.hypervisor',
      holds: (host) =>
        host.hypervisor === undefined ||
        !(
          (host.uri.startsWith('xen') && host.hypervisor === 'kvm') ||
          (host.uri.startsWith('qemu') && host.hypervisor === 'xen')
        ),
    },
  ],
);

/** Where the VNC servers of the pool's VMs with spec.graphics listen. */
const GraphicsListen = withRules(
  obj(
    'Where VNC listens on each host; set exactly one of network or socket. `virtfleet api` reaches it there (docs/access.md).',
    {
      network: Type.Optional(
        matching(
          'A libvirt network defined on every host, usually the management network: VNC listens on its address on the host ' +
            "where the VM runs (forward mode bridge, private or passthrough: its device's address; nat, route or none: its first " +
            "<ip>). libvirt resolves it on each host, so a live-migrated VM listens on its new host's address.",
          LIBVIRT_NAME,
          { maxLength: 64 },
        ),
      ),
      socket: Type.Optional(
        obj(
          "A UNIX socket libvirt makes in the domain's directory on the host: no network exposure; reachable only by an " +
            '`virtfleet api` running on that host.',
          {},
        ),
      ),
    },
  ),
  [
    {
      id: 'hp-graphics-listen-one',
      cel: celExactlyOne(['network', 'socket']),
      message: 'set exactly one of network (a libvirt network on every host) or socket',
      holds: (listen) => countSet(listen, ['network', 'socket']) === 1,
    },
  ],
);

export const HostPoolSpecSchema = obj('The hosts of the pool and how VMs are placed on them.', {
  hosts: namedList('The hosts, by name.', Host, { minItems: 1, maxItems: 100 }),
  scheduling: obj(
    'How VMs are placed.',
    {
      strategy: oneOf(
        'spread: the least loaded host first; binpack: fill hosts before using the next.',
        ['spread', 'binpack'],
        {
          default: 'spread',
        },
      ),
      cpuOvercommit: num('vCPUs that may be allocated per host CPU.', { minimum: 1, maximum: 16, default: 4 }),
      memoryOvercommit: num('Guest memory that may be allocated per byte of host memory.', {
        minimum: 1,
        maximum: 4,
        default: 1,
      }),
      autoHypervisor: Type.Optional(
        obj(
          'For VMs with hypervisor: auto, the hypervisor each workload prefers in this pool; a workload left out keeps the built-in rule (compute: kvm, io: xen, general: kvm). The other hypervisor is still used when no preferred host fits.',
          {
            compute: Type.Optional(oneOf('Preferred hypervisor for workload compute.', HYPERVISORS)),
            io: Type.Optional(oneOf('Preferred hypervisor for workload io.', HYPERVISORS)),
            general: Type.Optional(oneOf('Preferred hypervisor for workload general.', HYPERVISORS)),
          },
        ),
      ),
    },
    { default: {} },
  ),
  failureDetection: obj(
    'When a host counts as failed.',
    {
      heartbeatPeriodSeconds: int(
        'Seconds between heartbeats to each host; a heartbeat that does not answer within the period is missed.',
        { minimum: 1, maximum: 300, default: 2 },
      ),
      failureThreshold: int(
        "Missed heartbeats in a row after which the host is NotReady (failed): it takes no new VMs, and its VMs are started elsewhere once its fencing command (hosts[].fencing) confirmed the power-off, or, with spec.leases and no fencing command, where the new host's lock manager grants their leases.",
        {
          minimum: 1,
          maximum: 100,
          default: 3,
        },
      ),
    },
    { default: {} },
  ),
  storage: withRules(
    obj(
      'Where VM disks are created on each host.',
      {
        pool: matching('libvirt storage pool for VM volumes.', LIBVIRT_NAME, { default: 'default' }),
        path: Type.Optional(
          matching('Directory for a dir-type pool the controller creates if the pool is missing.', ABSOLUTE_PATH),
        ),
        shared: bool(
          "The pool is shared storage (e.g. NFS) with the same path on every host, so a VM's volumes are there on any host. " +
            'Needed to restart a VM with disks on another host when its host fails; without it such VMs wait for their host.',
          false,
        ),
        assumeCoherent: Type.Optional(
          bool(
            "The operator's claim, for shared storage libvirt does not recognize as shared (it knows NFS, GFS2, OCFS2, CephFS, " +
              'GlusterFS and a few more; anything else it calls unsafe to live-migrate without copying the disks): every host ' +
              "sees the same files and a write on one host is read back on another once flushed. Live migrations of this pool's " +
              "VMs then pass VIR_MIGRATE_UNSAFE, which also skips libvirt's cache-mode check: wrong, it can corrupt the disks " +
              '(docs/controllers.md). Needs shared: true.',
          ),
        ),
      },
      { default: {} },
    ),
    [
      {
        id: 'hp-assume-coherent-needs-shared',
        cel: '!has(self.assumeCoherent) || !self.assumeCoherent || self.shared',
        message:
          'storage.assumeCoherent is a claim about shared storage: set storage.shared: true as well, or drop assumeCoherent',
        fieldPath: '.assumeCoherent',
        holds: (storage) => !storage.assumeCoherent || storage.shared,
      },
    ],
  ),
  leases: Type.Optional(
    obj(
      'A lock-manager lease for every VM of the pool (virtlockd), so that no second copy of a VM can run: a copy started ' +
        "elsewhere is refused, and a live migration's source cannot resume once the destination holds the lease (a partition at " +
        "the switchover). A failed host's VMs restart elsewhere without a fencing command once another host's lock manager " +
        "grants their leases (and their disks'): proof that the old copy is gone. Each host must run virtlockd with " +
        'lock_manager = "lockd" in qemu.conf and, in qemu-lockd.conf, file_lockspace_dir = this directory on storage all ' +
        'hosts share, with auto_disk_leases = 1 (libvirt registers the lockspace only then; the disks are leased too). ' +
        'Without it, such a second copy is only detected and removed (docs/controllers.md).',
      {
        lockspace: matching(
          "The hosts' virtlockd lockspace directory (file_lockspace_dir), the same shared directory on every host.",
          ABSOLUTE_PATH,
        ),
        storagePool: matching(
          "libvirt dir storage pool over that directory, through which the controller makes each VM's lease file; defined on a host that lacks it.",
          LIBVIRT_NAME,
          { default: 'virtfleet-leases' },
        ),
      },
    ),
  ),
  network: obj(
    'The network VMs join when an interface names neither network nor bridge.',
    { name: matching('libvirt network name.', LIBVIRT_NAME, { maxLength: 64, default: 'default' }) },
    { default: {} },
  ),
  graphics: Type.Optional(
    obj('For VMs with spec.graphics: where their VNC servers listen. Unset: a UNIX socket on the host.', {
      listen: GraphicsListen,
    }),
  ),
});

const Resources = (description: string) =>
  obj(description, {
    cpus: int('CPUs (for allocations: vCPUs).', { minimum: 0 }),
    memory: quantity('Memory, e.g. 64Gi.'),
  });

export const HostPoolStatusSchema = obj('The observed state of the pool, written by the controller.', {
  hosts: Type.Optional(
    namedList(
      'One entry per host in spec.hosts.',
      obj('What the controller last saw of one host.', {
        name: dnsLabel('spec.hosts[].name of the host.'),
        ready: bool('Whether the host answers heartbeats and takes VMs.'),
        reason: Type.Optional(str('CamelCase reason when not ready.', { maxLength: 1024 })),
        message: Type.Optional(str('Details when not ready.', { maxLength: 32768 })),
        hypervisor: Type.Optional(oneOf('The hypervisor the host runs.', HYPERVISORS)),
        hypervisorVersion: Type.Optional(str('Hypervisor version, e.g. 7.2.0.', { maxLength: 64 })),
        libvirtVersion: Type.Optional(str('libvirt version, e.g. 9.0.0.', { maxLength: 64 })),
        capacity: Type.Optional(Resources('What the host has.')),
        allocated: Type.Optional(Resources('What its VMs are given.')),
        vmCount: Type.Optional(int('VMs placed on the host.', { minimum: 0 })),
        orphanDomains: Type.Optional(
          int(
            "Domains on the host with virtfleet's marker but no VirtualMachine (reported, never destroyed by the controller).",
            { minimum: 0 },
          ),
        ),
        lastTransitionTime: Type.Optional(str('When ready last changed (RFC 3339).', { format: 'date-time' })),
        lastHeartbeatTime: Type.Optional(
          str(
            "When the host last answered a heartbeat (RFC 3339), as of the pool's last status write: heartbeats alone never write status.",
            { format: 'date-time' },
          ),
        ),
        fencing: Type.Optional(
          obj('Fencing of the host after it failed (spec.hosts[].fencing), until it is back and clean.', {
            state: oneOf('Fencing: the command runs; Fenced: it confirmed power-off; Failed: it did not (retried).', [
              'Fencing',
              'Fenced',
              'Failed',
            ]),
            message: Type.Optional(str('What the command said, or why it failed.', { maxLength: 4096 })),
            attempts: Type.Optional(int('Commands run for this failure.', { minimum: 0 })),
            time: str('When the state was reached (RFC 3339).', { format: 'date-time' }),
          }),
        ),
      }),
      { maxItems: 100 },
    ),
  ),
  readyHosts: Type.Optional(int('Hosts that are ready.', { minimum: 0 })),
  hostCount: Type.Optional(int('Hosts in spec.hosts.', { minimum: 0 })),
  conditions: Type.Optional(
    conditions(
      'Ready (at least one host is ready), Degraded (a host is not), HypervisorMismatch, RemovalBlocked, OrphanDomains and Maintenance (how far each drain is).',
    ),
  ),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
  ),
});

export type HostPoolSpec = Static<typeof HostPoolSpecSchema>;
export type HostPoolStatus = Static<typeof HostPoolStatusSchema>;
export type Host = HostPoolSpec['hosts'][number];
export type HostStatus = NonNullable<HostPoolStatus['hosts']>[number];

/** A HostPool as the API server returns it: defaults applied. */
export interface HostPool {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'HostPool';
  metadata: V1ObjectMeta;
  spec: HostPoolSpec;
  status?: HostPoolStatus;
}

export const hostPoolResource: ResourceDefinition = {
  kind: 'HostPool',
  plural: 'hostpools',
  singular: 'hostpool',
  listKind: 'HostPoolList',
  shortNames: ['hp'],
  scope: 'Cluster',
  categories: ['virtfleet'],
  description:
    'A set of KVM or Xen hosts reached through libvirt, and how virtfleet places VMs on them and detects their failure.',
  spec: HostPoolSpecSchema,
  status: HostPoolStatusSchema,
  printerColumns: [
    conditionColumn('Ready', 'Whether at least one host is ready.'),
    { name: 'Hosts-Ready', type: 'integer', jsonPath: '.status.readyHosts', description: 'Hosts that are ready.' },
    { name: 'Hosts', type: 'integer', jsonPath: '.status.hostCount', description: 'Hosts in the pool.' },
    { name: 'Strategy', type: 'string', jsonPath: '.spec.scheduling.strategy', description: 'spread or binpack.' },
    AGE_COLUMN,
  ],
};
