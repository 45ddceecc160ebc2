// Names for libvirt's enum values, so that JavaScript sees "shutoff"/"crashed"
// rather than 5/3. The tables themselves are generated (names.cc).
#pragma once

#include <cstddef>

namespace virtfleet {

struct NameEntry {
  int value;
  const char* name;
};

struct NameTable {
  const NameEntry* entries;
  std::size_t size;

  // A value this build's headers do not know (a newer libvirt at run time)
  // is reported as "unknown"; the number travels alongside it.
  const char* Find(int value) const {
    for (std::size_t i = 0; i < size; i++) {
      if (entries[i].value == value) return entries[i].name;
    }
    return "unknown";
  }
};

extern const NameTable kDomainState;
extern const NameTable kNostateReason;
extern const NameTable kRunningReason;
extern const NameTable kBlockedReason;
extern const NameTable kPausedReason;
extern const NameTable kShutdownReason;
extern const NameTable kShutoffReason;
extern const NameTable kCrashedReason;
extern const NameTable kPMSuspendedReason;
extern const NameTable kEventType;
extern const NameTable kDefinedDetail;
extern const NameTable kUndefinedDetail;
extern const NameTable kStartedDetail;
extern const NameTable kSuspendedDetail;
extern const NameTable kResumedDetail;
extern const NameTable kStoppedDetail;
extern const NameTable kShutdownDetail;
extern const NameTable kPMSuspendedDetail;
extern const NameTable kCrashedDetail;
extern const NameTable kWatchdogAction;
extern const NameTable kIOErrorAction;
extern const NameTable kAgentState;
extern const NameTable kAgentReason;
extern const NameTable kCloseReason;
extern const NameTable kJobType;
extern const NameTable kJobOperation;
extern const NameTable kIPAddrType;
extern const NameTable kStoragePoolState;
extern const NameTable kStorageVolType;
extern const NameTable kErrorCode;
extern const NameTable kErrorDomain;

// The reason table that belongs to a domain state (virDomainGetState).
const char* StateReasonName(int state, int reason);
// The detail table that belongs to a lifecycle event type.
const char* EventDetailName(int event, int detail);

}  // namespace virtfleet
