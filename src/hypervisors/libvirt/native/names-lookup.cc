// Picks the reason/detail table that goes with a state/event: libvirt reuses
// the same small integers for different meanings under each state.
#include <libvirt/libvirt.h>

#include "names.h"

namespace virtfleet {

const char* StateReasonName(int state, int reason) {
  switch (state) {
    case VIR_DOMAIN_NOSTATE: return kNostateReason.Find(reason);
    case VIR_DOMAIN_RUNNING: return kRunningReason.Find(reason);
    case VIR_DOMAIN_BLOCKED: return kBlockedReason.Find(reason);
    case VIR_DOMAIN_PAUSED: return kPausedReason.Find(reason);
    case VIR_DOMAIN_SHUTDOWN: return kShutdownReason.Find(reason);
    case VIR_DOMAIN_SHUTOFF: return kShutoffReason.Find(reason);
    case VIR_DOMAIN_CRASHED: return kCrashedReason.Find(reason);
    case VIR_DOMAIN_PMSUSPENDED: return kPMSuspendedReason.Find(reason);
    default: return "unknown";
  }
}

const char* EventDetailName(int event, int detail) {
  switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED: return kDefinedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_UNDEFINED: return kUndefinedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_STARTED: return kStartedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_SUSPENDED: return kSuspendedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_RESUMED: return kResumedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_STOPPED: return kStoppedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_SHUTDOWN: return kShutdownDetail.Find(detail);
    case VIR_DOMAIN_EVENT_PMSUSPENDED: return kPMSuspendedDetail.Find(detail);
    case VIR_DOMAIN_EVENT_CRASHED: return kCrashedDetail.Find(detail);
    default: return "unknown";
  }
}

}  // namespace virtfleet
