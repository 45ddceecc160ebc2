#include "event-loop.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <mutex>
#include <thread>

namespace virtfleet {

static void RunForever() {
  for (;;) {
    // Each call waits for and dispatches one round of I/O and timers. A failed
    // round (rare: a poll() error) is not fatal; the next one tries again.
    if (virEventRunDefaultImpl() < 0) virResetLastError();
  }
}

bool StartEventLoop(const char** error) {
  static std::once_flag once;
  static const char* failure = nullptr;
  std::call_once(once, [] {
    if (virEventRegisterDefaultImpl() < 0) {
      virResetLastError();
      failure = "virEventRegisterDefaultImpl failed";
      return;
    }
    // Detached: the loop lives as long as the process; there is no safe point
    // to stop it while other environments may still hold connections.
    std::thread(RunForever).detach();
  });
  *error = failure;
  return failure == nullptr;
}

}  // namespace virtfleet
