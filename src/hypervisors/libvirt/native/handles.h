// Owners for what libvirt hands back, so that every exit path frees it.
#pragma once

#include <libvirt/libvirt.h>

#include <cstdlib>
#include <memory>

namespace virtfleet {

struct DomainFree {
  void operator()(virDomainPtr dom) const { virDomainFree(dom); }
};
using DomainHandle = std::unique_ptr<virDomain, DomainFree>;

// Strings that libvirt documents as "the caller must free()".
struct CFree {
  void operator()(char* s) const { std::free(s); }
};
using CString = std::unique_ptr<char, CFree>;

struct StatsRecordsFree {
  void operator()(virDomainStatsRecordPtr* records) const {
    virDomainStatsRecordListFree(records);
  }
};
using StatsRecords = std::unique_ptr<virDomainStatsRecordPtr, StatsRecordsFree>;

}  // namespace virtfleet
