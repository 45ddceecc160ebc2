// libvirt's default event loop, run in a thread of its own. libvirt needs an
// event loop registered before any connection opens, for domain events,
// keepalive and close callbacks; running it on a separate thread means the
// JavaScript thread and the connections' worker threads never have to.
#pragma once

namespace virtfleet {

// Registers the default event implementation and starts its thread, once per
// process (the addon may be loaded by several Node.js environments). Returns
// false with *error set if libvirt refused to register it.
bool StartEventLoop(const char** error);

}  // namespace virtfleet
