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

struct StoragePoolFree {
  void operator()(virStoragePoolPtr pool) const { virStoragePoolFree(pool); }
};
using StoragePoolHandle = std::unique_ptr<virStoragePool, StoragePoolFree>;

struct StorageVolFree {
  void operator()(virStorageVolPtr vol) const { virStorageVolFree(vol); }
};
using StorageVolHandle = std::unique_ptr<virStorageVol, StorageVolFree>;

struct NetworkFree {
  void operator()(virNetworkPtr net) const { virNetworkFree(net); }
};
using NetworkHandle = std::unique_ptr<virNetwork, NetworkFree>;

struct SnapshotFree {
  void operator()(virDomainSnapshotPtr snap) const { virDomainSnapshotFree(snap); }
};
using SnapshotHandle = std::unique_ptr<virDomainSnapshot, SnapshotFree>;

struct StreamFree {
  void operator()(virStreamPtr st) const { virStreamFree(st); }
};
using StreamHandle = std::unique_ptr<virStream, StreamFree>;

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
