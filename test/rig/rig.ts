// The rig's hosts live in src/devstack/rig.ts, shared with `make run` (src/devstack/real-hosts.ts);
// the tests keep importing them from here.
export * from '../../src/devstack/rig.js';
