// Condition types and reasons of the VirtualMachine and HostPool controllers, in one place so
// that tests, docs and `kubectl wait --for=condition=…` all spell them the same way.

export const VM_CONDITIONS = {
  Scheduled: 'Scheduled',
  Provisioned: 'Provisioned',
  Ready: 'Ready',
  RestartRequired: 'RestartRequired',
  /** True while a live migration runs (message: from, to, progress). */
  Migrating: 'Migrating',
  /** spec.healthCheck's verdict (absent without one). */
  Healthy: 'Healthy',
  /** spec.install: True once installed (the VM boots from its disk for good); False while installing, waiting or failed. */
  Installed: 'Installed',
} as const;

export const VM_REASONS = {
  // Scheduled
  Placed: 'Placed',
  Unschedulable: 'Unschedulable',
  HostPoolNotFound: 'HostPoolNotFound',
  // Provisioned
  Defined: 'Defined',
  InvalidDefinition: 'InvalidDefinition',
  NotScheduled: 'NotScheduled',
  /** Being moved to another host after its host failed. */
  Evacuating: 'Evacuating',
  /** Volumes are being made (an image downloads or uploads); the message says how far. */
  ProvisioningDisks: 'ProvisioningDisks',
  /** A volume could not be made; the message names the disk field and the host. Retried. */
  ProvisioningFailed: 'ProvisioningFailed',
  /** An image URL could not be downloaded; the message names the disk field. Retried. */
  ImageDownloadFailed: 'ImageDownloadFailed',
  /** spec.templateRef names no VirtualMachineTemplate (yet): taken once it exists. */
  TemplateNotFound: 'TemplateNotFound',
  /** The VM and its template merged break a rule, or neither sets memory: a person fixes one. */
  TemplateInvalid: 'TemplateInvalid',
  // Ready
  Running: 'Running',
  Starting: 'Starting',
  Stopped: 'Stopped',
  ShuttingDown: 'ShuttingDown',
  Paused: 'Paused',
  /** The domain keeps going down; the next start waits (message: when, and the back-off). */
  CrashLoopBackOff: 'CrashLoopBackOff',
  /** Stopped by `virtfleet vm stop` (the virtfleet.io/action annotation); stays so until a start. */
  StoppedByUser: 'StoppedByUser',
  /** Paused by `virtfleet vm pause`; stays so until an unpause. */
  PausedByUser: 'PausedByUser',
  HostNotReady: 'HostNotReady',
  /** The host failed; the VM is not started elsewhere until its old copy is known dead (message: why, what to do). */
  RecoveryBlocked: 'RecoveryBlocked',
  /** The host failed and is being fenced; the VM is started elsewhere after. */
  RecoveryPending: 'RecoveryPending',
  /** HostPool spec.leases: the VM's lease file cannot be made (message: why, what to fix). */
  LeaseUnavailable: 'LeaseUnavailable',
  /** A host that may hold a running copy does not answer: nothing is started or removed until it does or is fenced (vm/location.ts). */
  CopyUnknown: 'CopyUnknown',
  HostUnreachable: 'HostUnreachable',
  Terminating: 'Terminating',
  // Healthy
  ProbePending: 'ProbePending',
  ProbeSucceeded: 'ProbeSucceeded',
  ProbeFailed: 'ProbeFailed',
  /** Ready=False: the health check failed failureThreshold times in a row. */
  Unhealthy: 'Unhealthy',
  // Migrating
  Migrating: 'Migrating',
  Migrated: 'Migrated',
  MigrationFailed: 'MigrationFailed',
  MigrationQueued: 'MigrationQueued',
  /** The migration ended, but a host it involved does not answer: where the VM runs is not known yet. */
  MigrationUnresolved: 'MigrationUnresolved',
  /** The last of MIGRATION_ATTEMPTS failed: the VM stays where it is until asked again. */
  MigrationGaveUp: 'MigrationGaveUp',
  /** Refused before anything was copied (a host device, a local file, the destination's pool or its room): not retried until asked again. */
  MigrationRefused: 'MigrationRefused',
  NoDestination: 'NoDestination',
  NotMigrating: 'NotMigrating',
  // RestartRequired
  PendingChanges: 'PendingChanges',
  NoPendingChanges: 'NoPendingChanges',
  // Installed (and Ready while the install runs or waits)
  /** The installer runs (message: the profile, the Kickstart URL without its token, the deadline). Also Ready=False. */
  Installing: 'Installing',
  /** True: the installer powered the VM off; it boots from its disk. */
  Installed: 'Installed',
  /** The installer did not power the VM off in time; the domain was destroyed. Retry: `virtfleet vm restart`. */
  InstallTimedOut: 'InstallTimedOut',
  /** The installer crashed or was destroyed. Retry: `virtfleet vm restart`. */
  InstallFailed: 'InstallFailed',
  /** spec.install was added to a VM that had run: not reinstalled until `virtfleet vm restart`. */
  InstallNotStarted: 'InstallNotStarted',
  /** The install waits for the VM to be started (runStrategy Manual or Halted, or a stop hold). */
  WaitingForStart: 'WaitingForStart',
  /** spec.install.profileRef names no InstallProfile. */
  ProfileNotFound: 'ProfileNotFound',
  /** The InstallProfile is not Valid (message: its problems). */
  ProfileNotValid: 'ProfileNotValid',
  /** The controller runs no install endpoint, or it cannot listen. */
  InstallEndpointUnavailable: 'InstallEndpointUnavailable',
  /** The installer's kernel and initrd are being put on the host (message: progress). */
  PreparingInstall: 'PreparingInstall',
  /** The installer's kernel or initrd cannot be put on the host (message: which, why). Retried. */
  InstallMediaFailed: 'InstallMediaFailed',
  /** Another VM installs by PXE on the same host with the same MAC: this one waits (message: which). */
  InstallMacInUse: 'InstallMacInUse',
} as const;

/** Reasons of Events on VirtualMachines (kubectl describe). */
export const VM_EVENTS = {
  Scheduled: 'Scheduled',
  FailedScheduling: 'FailedScheduling',
  Defined: 'Defined',
  Redefined: 'Redefined',
  DefinitionRefused: 'DefinitionRefused',
  Started: 'Started',
  ShuttingDown: 'ShuttingDown',
  Destroyed: 'Destroyed',
  Stopped: 'Stopped',
  Paused: 'Paused',
  Resumed: 'Resumed',
  /** A spec change was applied to the running domain (memory by balloon). */
  LiveUpdated: 'LiveUpdated',
  /** The domain went down without being asked and runStrategy started it again. */
  Restarted: 'Restarted',
  CrashLoopBackOff: 'CrashLoopBackOff',
  /** Its host failed and was fenced (or, with spec.leases, the VM is tried elsewhere): the VM is started on another host. */
  Evacuated: 'Evacuated',
  /** A failed host's VM started elsewhere because the lock manager granted its leases: the evidence that the old copy is gone. */
  LeaseAcquired: 'LeaseAcquired',
  /** A start was refused because another copy holds the VM's lease (or a disk's): that copy is alive. */
  LeaseHeld: 'LeaseHeld',
  /** Two running copies were found; one was kept by the rule of vm/location.ts, the others destroyed. */
  SplitBrain: 'SplitBrain',
  /** A copy the rule of vm/location.ts does not keep was removed (with the evidence in the message). */
  CopyRemoved: 'CopyRemoved',
  /** The VM was found running on another host than status.host (a migration finished unseen) and is taken as it is. */
  Adopted: 'Adopted',
  CopyUnknown: 'CopyUnknown',
  MigrationStarted: 'MigrationStarted',
  /** The health check failed failureThreshold times in a row; the VM is restarted. */
  Unhealthy: 'Unhealthy',
  Migrated: 'Migrated',
  MigrationFailed: 'MigrationFailed',
  /** A migration refused before it started (the message names the cause and the fix). */
  MigrationRefused: 'MigrationRefused',
  /** Why a VM of a failed host waits (Warning, once per message). */
  RecoveryBlocked: 'RecoveryBlocked',
  RecoveryPending: 'RecoveryPending',
  HostNotReady: 'HostNotReady',
  /** An operation (virtfleet.io/action) was taken up, done, or refused (the message says why). */
  ActionStarted: 'ActionStarted',
  ActionDone: 'ActionDone',
  ActionRefused: 'ActionRefused',
  RestartRequired: 'RestartRequired',
  Undefined: 'Undefined',
  /** The deletion is done (no copy left on the hosts that answered): the orphan scan's durable record (hostpool-orphans.ts). */
  Deleted: 'Deleted',
  HostUnreachable: 'HostUnreachable',
  VolumesCreated: 'VolumesCreated',
  VolumesDeleted: 'VolumesDeleted',
  VolumesRetained: 'VolumesRetained',
  ProvisioningFailed: 'ProvisioningFailed',
  /** An install started (profile, Kickstart URL without its token, timeout). */
  InstallStarted: 'InstallStarted',
  /** The installer fetched its Kickstart (client address and the file's sha256; never its content). */
  KickstartServed: 'KickstartServed',
  /** The installer asked for its Kickstart, but the profile does not render (Warning). */
  KickstartUnavailable: 'KickstartUnavailable',
  /** The installer powered the VM off: installed, redefined to boot from disk. */
  Installed: 'Installed',
  InstallTimedOut: 'InstallTimedOut',
  InstallFailed: 'InstallFailed',
  /** Warning: the installer's kernel or initrd cannot be put on the host. */
  InstallMediaFailed: 'InstallMediaFailed',
  /** Warning: no install endpoint to serve the Kickstart. */
  InstallEndpointUnavailable: 'InstallEndpointUnavailable',
} as const;

export const POOL_CONDITIONS = {
  Ready: 'Ready',
  Degraded: 'Degraded',
  HypervisorMismatch: 'HypervisorMismatch',
  RemovalBlocked: 'RemovalBlocked',
  /** Domains with virtfleet's marker and no VirtualMachine are on a host (reported, never destroyed). */
  OrphanDomains: 'OrphanDomains',
  /** True while a host is in maintenance: how far its drain is. */
  Maintenance: 'Maintenance',
} as const;

export const POOL_REASONS = {
  HostsReady: 'HostsReady',
  NoHostReady: 'NoHostReady',
  AllHostsReady: 'AllHostsReady',
  HostsNotReady: 'HostsNotReady',
  AsDeclared: 'AsDeclared',
  DeclaredDiffersFromDetected: 'DeclaredDiffersFromDetected',
  NothingBlocked: 'NothingBlocked',
  HostsStillHaveVMs: 'HostsStillHaveVMs',
  OrphanDomainsFound: 'OrphanDomainsFound',
  NoOrphanDomains: 'NoOrphanDomains',
  Draining: 'Draining',
  Drained: 'Drained',
  NoMaintenance: 'NoMaintenance',
} as const;

/** Reasons of Events on HostPools (cluster-scoped: the Events are in namespace default). */
export const POOL_EVENTS = {
  /** Warning: orphan domains appeared; names them. */
  OrphanDomainsFound: 'OrphanDomainsFound',
  /** Normal: orphan domains reported before are gone. */
  OrphanDomainsGone: 'OrphanDomainsGone',
  LeftoverDomainRemoved: 'LeftoverDomainRemoved',
  /** A failed host's fencing command started, succeeded, or failed. */
  Fencing: 'Fencing',
  Fenced: 'Fenced',
  FencingFailed: 'FencingFailed',
} as const;

/** Reasons of one host's `ready: false` in HostPool status.hosts[]. */
export const HOST_REASONS = {
  Connecting: 'Connecting',
  Unreachable: 'Unreachable',
  Disconnected: 'Disconnected',
  HeartbeatMissed: 'HeartbeatMissed',
  HypervisorUnknown: 'HypervisorUnknown',
  HypervisorMismatch: 'HypervisorMismatch',
  /** credentialsSecretRef names a Secret outside the controller's namespace. */
  CredentialsNamespaceNotAllowed: 'CredentialsNamespaceNotAllowed',
  CredentialsNotFound: 'CredentialsNotFound',
  /** The Secret lacks the keys the URI's transport needs, or the URI conflicts with them. */
  CredentialsInvalid: 'CredentialsInvalid',
  RemovedFromSpec: 'RemovedFromSpec',
} as const;

/** The InstallProfile controller's condition, its reasons, and the reasons of its Events. */
export const INSTALL_PROFILE_CONDITIONS = {
  /** True: the profile and its Secrets render to a Kickstart file (status.renderedHash is its sha256). */
  Valid: 'Valid',
  /** Valid's status, reason and message: what kstatus (Flux, kubectl-based waits) reads (kstatus.ts). */
  Ready: 'Ready',
} as const;

export const INSTALL_PROFILE_REASONS = {
  Rendered: 'Rendered',
  /** A field of the spec cannot be rendered; the message names it and says what to do. */
  InvalidSpec: 'InvalidSpec',
  /** A Secret the profile names does not exist (looked for again every 30 s). */
  SecretNotFound: 'SecretNotFound',
  /** The controller may not read Secrets in the profile's namespace; the message says how to grant it. */
  SecretForbidden: 'SecretForbidden',
  /** A Secret lacks the key, or its value is no usable hash or password; the message says which and why, never the value. */
  InvalidSecret: 'InvalidSecret',
} as const;

/** Reasons of Events on InstallProfiles. */
export const INSTALL_PROFILE_EVENTS = {
  /** Normal: the profile became valid, or its Kickstart file changed; names the new sha256. */
  Rendered: 'Rendered',
  /** Warning: the profile became invalid, or its problems changed; names them. */
  Invalid: 'Invalid',
} as const;

/** The component the controller's Events name (their source); the orphan scan trusts only its own. */
export const EVENT_COMPONENT = 'virtfleet-controller';
