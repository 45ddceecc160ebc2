// Domain calls. JavaScript names a domain by its UUID; each job looks the
// domain up on the worker, acts, and frees the handle, so no libvirt handle
// ever reaches JavaScript and a stale one can never be used.
//
// Start and stop are side jobs (side-thread.h): QEMU takes seconds to start
// (under TCG 1-2 s), and on the worker they would hold up every other call
// on the host, other domains' starts included.
#include <libvirt/libvirt.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "named-object.h"
#include "names.h"
#include "side-thread.h"

namespace virtfleet {

namespace {

struct StateAndReason {
  int state;
  int reason;
};

Napi::Object StateToJs(Napi::Env env, StateAndReason s) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("state", kDomainState.Find(s.state));
  out.Set("reason", StateReasonName(s.state, s.reason));
  out.Set("stateCode", s.state);
  out.Set("reasonCode", s.reason);
  return out;
}

struct DomainSummary {
  DomainIdentity identity;
  StateAndReason state;
};

// One call for every domain's state (a single round trip to a remote host).
// Returns false when the driver does not implement it.
bool SummariesFromStats(virConnectPtr conn, std::vector<DomainSummary>& out) {
  virDomainStatsRecordPtr* raw = nullptr;
  int count = virConnectGetAllDomainStats(conn, VIR_DOMAIN_STATS_STATE, &raw, 0);
  if (count < 0) {
    LibvirtError error = TakeLastError("virConnectGetAllDomainStats");
    if (error.code == VIR_ERR_NO_SUPPORT) return false;
    throw error;
  }
  StatsRecords records(raw);
  for (int i = 0; i < count; i++) {
    virDomainStatsRecordPtr record = raw[i];
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    if (virTypedParamsGetInt(record->params, record->nparams, "state.state", &state) < 0 ||
        virTypedParamsGetInt(record->params, record->nparams, "state.reason", &reason) < 0) {
      ThrowLastError("virTypedParamsGetInt");
    }
    out.push_back({RequireIdentity(record->dom), {state, reason}});
  }
  return true;
}

// The fallback: list, then ask each domain. A domain that disappears between
// the two calls is left out rather than failing the whole list.
void SummariesOneByOne(virConnectPtr conn, std::vector<DomainSummary>& out) {
  virDomainPtr* raw = nullptr;
  int count = Check(LIBVIRT_CALL(virConnectListAllDomains), conn, &raw, 0u);
  std::vector<DomainHandle> domains = TakeList<DomainHandle>(raw, count);
  for (DomainHandle& dom : domains) {
    StateAndReason s{};
    if (virDomainGetState(dom.get(), &s.state, &s.reason, 0) < 0) {
      LibvirtError error = TakeLastError("virDomainGetState");
      if (error.code == VIR_ERR_NO_DOMAIN) continue;
      throw error;
    }
    out.push_back({RequireIdentity(dom.get()), s});
  }
}

}  // namespace

// listAllDomains() -> Promise<Array<{uuid, name, id, state, reason, ...}>>
Napi::Value Connection::ListAllDomains(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      virConnectPtr conn = RequireConnection(session);
      std::vector<DomainSummary> summaries;
      if (!SummariesFromStats(conn, summaries)) SummariesOneByOne(conn, summaries);
      return [summaries = std::move(summaries)](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, summaries.size());
        for (std::size_t i = 0; i < summaries.size(); i++) {
          Napi::Object item = ToJs(env, summaries[i].identity);
          Napi::Object state = StateToJs(env, summaries[i].state);
          for (const char* key : {"state", "reason", "stateCode", "reasonCode"}) {
            item.Set(key, state.Get(key));
          }
          out.Set(static_cast<uint32_t>(i), item);
        }
        return out;
      };
    });
  });
}

Napi::Value Connection::LookupDomainByUUID(const Napi::CallbackInfo& info) {
  return Run(info, LookupJob<Domain>);
}

Napi::Value Connection::LookupDomainByName(const Napi::CallbackInfo& info) {
  return Run(info, LookupByNameJob<Domain>);
}

// defineXML(xml, { validate? }) -> Promise<{uuid, name, id}>. Defining an
// existing UUID updates that domain's persistent definition.
Napi::Value Connection::DefineXML(const Napi::CallbackInfo& info) {
  return Run(info, DefineXMLJob<Domain>);
}

// domainCreate(uuid, { paused?, autodestroy?, bypassCache?, forceBoot? }):
// starts a defined domain (from its managed-save image if it has one, unless
// forceBoot).
Napi::Value Connection::DomainCreate(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    Napi::Object options = OptionsArg(info, 1);
    unsigned int flags = 0;
    if (BoolOption(options, "paused")) flags |= VIR_DOMAIN_START_PAUSED;
    if (BoolOption(options, "autodestroy")) flags |= VIR_DOMAIN_START_AUTODESTROY;
    if (BoolOption(options, "bypassCache")) flags |= VIR_DOMAIN_START_BYPASS_CACHE;
    if (BoolOption(options, "forceBoot")) flags |= VIR_DOMAIN_START_FORCE_BOOT;
    return Submit(info.Env(),
                  Beside(Act<Domain>(uuid, LIBVIRT_CALL(virDomainCreateWithFlags), flags)));
  });
}

// domainShutdown(uuid): asks the guest to shut down; returns before it has.
Napi::Value Connection::DomainShutdown(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    return Submit(info.Env(), Beside(Act<Domain>(uuid, LIBVIRT_CALL(virDomainShutdown))));
  });
}

Napi::Value Connection::DomainReboot(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Domain>(LIBVIRT_CALL(virDomainReboot), 0u));
}

// domainDestroy(uuid, { graceful? }): stops the domain at once; graceful
// sends SIGTERM only, without the SIGKILL that follows by default.
Napi::Value Connection::DomainDestroy(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    unsigned int flags =
        BoolOption(OptionsArg(info, 1), "graceful") ? VIR_DOMAIN_DESTROY_GRACEFUL : 0;
    return Submit(info.Env(),
                  Beside(Act<Domain>(uuid, LIBVIRT_CALL(virDomainDestroyFlags), flags)));
  });
}

// Pause and resume are side jobs too: a group snapshot pauses and resumes several VMs of one
// host at once, and one after the other on the queue they lengthen the group's pause window.
Napi::Value Connection::DomainSuspend(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    return Submit(info.Env(), Beside(Act<Domain>(uuid, LIBVIRT_CALL(virDomainSuspend))));
  });
}

Napi::Value Connection::DomainResume(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    return Submit(info.Env(), Beside(Act<Domain>(uuid, LIBVIRT_CALL(virDomainResume))));
  });
}

// domainUndefine(uuid, { managedSave?, snapshotsMetadata?,
//   checkpointsMetadata?, nvram?, keepNvram? }): removes the persistent
// definition; without the flags libvirt refuses a domain that has the
// corresponding state.
Napi::Value Connection::DomainUndefine(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    Napi::Object options = OptionsArg(info, 1);
    unsigned int flags = 0;
    if (BoolOption(options, "managedSave")) flags |= VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
    if (BoolOption(options, "snapshotsMetadata")) flags |= VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
    if (BoolOption(options, "checkpointsMetadata")) {
      flags |= VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    }
    if (BoolOption(options, "nvram")) flags |= VIR_DOMAIN_UNDEFINE_NVRAM;
    if (BoolOption(options, "keepNvram")) flags |= VIR_DOMAIN_UNDEFINE_KEEP_NVRAM;
    return Submit(info.Env(), Act<Domain>(uuid, LIBVIRT_CALL(virDomainUndefineFlags), flags));
  });
}

// domainGetState(uuid) -> Promise<{state, reason, stateCode, reasonCode}>
Napi::Value Connection::DomainGetState(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    return Submit(info.Env(), On<Domain>(uuid, [](virDomainPtr dom) -> Reply {
                    StateAndReason s{};
                    if (virDomainGetState(dom, &s.state, &s.reason, 0) < 0) {
                      ThrowLastError("virDomainGetState");
                    }
                    return [s](Napi::Env env) -> Napi::Value { return StateToJs(env, s); };
                  }));
  });
}

// domainGetXMLDesc(uuid, { secure?, inactive?, migratable? }) -> Promise<string>
Napi::Value Connection::DomainGetXMLDesc(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    Napi::Object options = OptionsArg(info, 1);
    unsigned int flags = 0;
    if (BoolOption(options, "secure")) flags |= VIR_DOMAIN_XML_SECURE;
    if (BoolOption(options, "inactive")) flags |= VIR_DOMAIN_XML_INACTIVE;
    if (BoolOption(options, "migratable")) flags |= VIR_DOMAIN_XML_MIGRATABLE;
    return Submit(info.Env(), Text<Domain>(uuid, LIBVIRT_CALL(virDomainGetXMLDesc), flags));
  });
}

// domainGetInfo(uuid) -> Promise<{state, maxMemoryKiB, memoryKiB, vcpus,
// cpuTimeNs}>. cpuTimeNs is a double: exact up to 2^53 ns (104 days).
Napi::Value Connection::DomainGetInfo(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    return Submit(info.Env(), On<Domain>(uuid, [](virDomainPtr dom) -> Reply {
                    virDomainInfo di;
                    if (virDomainGetInfo(dom, &di) < 0) ThrowLastError("virDomainGetInfo");
                    return [di](Napi::Env env) -> Napi::Value {
                      Napi::Object out = Napi::Object::New(env);
                      out.Set("state", kDomainState.Find(di.state));
                      out.Set("stateCode", static_cast<int>(di.state));
                      out.Set("maxMemoryKiB", static_cast<double>(di.maxMem));
                      out.Set("memoryKiB", static_cast<double>(di.memory));
                      out.Set("vcpus", static_cast<int>(di.nrVirtCpu));
                      out.Set("cpuTimeNs", static_cast<double>(di.cpuTime));
                      return out;
                    };
                  }));
  });
}

// domainSetMemoryFlags(uuid, kib, { live?, config?, maximum? }): sets the
// domain's current memory (the balloon target) in KiB, or with `maximum` its
// maximum memory. live: the running domain; config: the persistent
// definition; neither: whichever the domain has now (VIR_DOMAIN_AFFECT_CURRENT).
// A value above the maximum is refused with VIR_ERR_INVALID_ARG ("cannot set
// memory higher than max memory"), a stopped domain with `live` with
// VIR_ERR_OPERATION_INVALID.
Napi::Value Connection::DomainSetMemoryFlags(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    Napi::Object sizes = Napi::Object::New(info.Env());
    sizes.Set("kib", info.Length() > 1 ? info[1] : info.Env().Undefined());
    std::optional<uint64_t> kib = UnsignedOption(sizes, "kib");
    if (!kib) throw Napi::TypeError::New(info.Env(), "kib must be a number");
    if (*kib > std::numeric_limits<unsigned long>::max()) {
      throw Napi::RangeError::New(info.Env(), "kib is too large for this platform");
    }
    Napi::Object options = OptionsArg(info, 2);
    unsigned int flags = VIR_DOMAIN_AFFECT_CURRENT;
    if (BoolOption(options, "live")) flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (BoolOption(options, "config")) flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (BoolOption(options, "maximum")) flags |= VIR_DOMAIN_MEM_MAXIMUM;
    unsigned long memory = static_cast<unsigned long>(*kib);
    return Submit(info.Env(),
                  Act<Domain>(uuid, LIBVIRT_CALL(virDomainSetMemoryFlags), memory, flags));
  });
}

// domainManagedSave(uuid): saves the running domain's memory to a file the
// host manages and stops it; the next domainCreate restores from it.
Napi::Value Connection::DomainManagedSave(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Domain>(LIBVIRT_CALL(virDomainManagedSave), 0u));
}

Napi::Value Connection::DomainHasManagedSaveImage(const Napi::CallbackInfo& info) {
  return Run(info, [](const Napi::CallbackInfo& info) {
    return Ask<Domain>(KeyArg<Domain>(info), LIBVIRT_CALL(virDomainHasManagedSaveImage), 0u);
  });
}

Napi::Value Connection::DomainManagedSaveRemove(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Domain>(LIBVIRT_CALL(virDomainManagedSaveRemove), 0u));
}

}  // namespace virtfleet
