// Migration and jobs. A migration runs for seconds to minutes, and calls on
// one connection run one at a time on its worker, so a migration gets a
// thread and a libvirt connection of its own (a side job without a key,
// side-thread.h): job stats and abort then run beside it on the connection's
// worker.
#include <libvirt/libvirt.h>

#include <optional>
#include <string>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "named-object.h"
#include "names.h"
#include "params.h"
#include "side-thread.h"

namespace virtfleet {

namespace {

struct MigrateArgs {
  // Peer-to-peer: the destination's libvirt URI (qemu+tcp://dest/system).
  std::optional<std::string> destinationUri;
  // Where QEMU sends the memory (tcp://dest-address); libvirt picks one otherwise.
  std::optional<std::string> migrationUri;
  std::optional<std::string> destinationName;
  std::optional<std::string> destinationXml;
  std::optional<std::string> persistXml;
  std::optional<uint64_t> bandwidthMiBps;
  std::optional<uint64_t> maxDowntimeMs;
  unsigned int flags = 0;
};

MigrateArgs ParseMigrateOptions(Napi::Env env, const Napi::Object& options) {
  MigrateArgs args;
  args.destinationUri = StringOption(options, "destinationUri");
  args.migrationUri = StringOption(options, "migrationUri");
  args.destinationName = StringOption(options, "destinationName");
  args.destinationXml = StringOption(options, "destinationXml");
  args.persistXml = StringOption(options, "persistXml");
  args.bandwidthMiBps = UnsignedOption(options, "bandwidthMiBps");
  args.maxDowntimeMs = UnsignedOption(options, "maxDowntimeMs");
  if (BoolOption(options, "live")) args.flags |= VIR_MIGRATE_LIVE;
  if (BoolOption(options, "peerToPeer")) args.flags |= VIR_MIGRATE_PEER2PEER;
  if (BoolOption(options, "tunnelled")) args.flags |= VIR_MIGRATE_TUNNELLED;
  if (BoolOption(options, "persistDestination")) args.flags |= VIR_MIGRATE_PERSIST_DEST;
  if (BoolOption(options, "undefineSource")) args.flags |= VIR_MIGRATE_UNDEFINE_SOURCE;
  if (BoolOption(options, "autoConverge")) args.flags |= VIR_MIGRATE_AUTO_CONVERGE;
  if (BoolOption(options, "abortOnError")) args.flags |= VIR_MIGRATE_ABORT_ON_ERROR;
  if (BoolOption(options, "unsafe")) args.flags |= VIR_MIGRATE_UNSAFE;
  std::optional<std::string> copyStorage = StringOption(options, "copyStorage");
  if (copyStorage == "all") {
    args.flags |= VIR_MIGRATE_NON_SHARED_DISK;
  } else if (copyStorage == "incremental") {
    args.flags |= VIR_MIGRATE_NON_SHARED_INC;
  } else if (copyStorage) {
    throw Napi::TypeError::New(env, "copyStorage must be 'all' or 'incremental'");
  }
  // Without peer-to-peer, libvirt's client would have to reach the
  // destination itself (virDomainMigrate3); QEMU refuses "direct" migration.
  if ((args.flags & VIR_MIGRATE_PEER2PEER) && !args.destinationUri) {
    throw Napi::TypeError::New(env, "peerToPeer needs destinationUri");
  }
  if (!(args.flags & VIR_MIGRATE_PEER2PEER) && args.destinationUri) {
    throw Napi::TypeError::New(env, "destinationUri is used only with peerToPeer");
  }
  return args;
}

Reply Migrate(virConnectPtr conn, const std::string& uuid, const MigrateArgs& args) {
  DomainHandle dom = Lookup<Domain>(conn, uuid);
  if (args.maxDowntimeMs && virDomainMigrateSetMaxDowntime(dom.get(), *args.maxDowntimeMs, 0) < 0) {
    ThrowLastError("virDomainMigrateSetMaxDowntime");
  }
  ParamsBuilder params;
  if (args.migrationUri) params.AddString(VIR_MIGRATE_PARAM_URI, *args.migrationUri);
  if (args.destinationName) params.AddString(VIR_MIGRATE_PARAM_DEST_NAME, *args.destinationName);
  if (args.destinationXml) params.AddString(VIR_MIGRATE_PARAM_DEST_XML, *args.destinationXml);
  if (args.persistXml) params.AddString(VIR_MIGRATE_PARAM_PERSIST_XML, *args.persistXml);
  if (args.bandwidthMiBps) params.AddULLong(VIR_MIGRATE_PARAM_BANDWIDTH, *args.bandwidthMiBps);
  const char* dconnuri = args.destinationUri ? args.destinationUri->c_str() : nullptr;
  if (virDomainMigrateToURI3(dom.get(), dconnuri, params.params(), params.count(), args.flags) < 0) {
    ThrowLastError("virDomainMigrateToURI3");
  }
  return nullptr;
}

}  // namespace

// domainMigrate(uuid, { destinationUri?, migrationUri?, live?, peerToPeer?,
//   tunnelled?, persistDestination?, undefineSource?, copyStorage?,
//   bandwidthMiBps?, maxDowntimeMs?, autoConverge?, abortOnError?, unsafe?,
//   destinationName?, destinationXml?, persistXml? }) -> Promise<void>
//
// The promise settles when the migration ends; meanwhile the connection
// serves other calls, those on the migrating domain included.
Napi::Value Connection::DomainMigrate(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    MigrateArgs args = ParseMigrateOptions(info.Env(), OptionsArg(info, 1));
    return Submit(info.Env(), OnSideThread([uuid, args](virConnectPtr conn) -> Reply {
                    return Migrate(conn, uuid, args);
                  }));
  });
}

// domainGetJobStats(uuid, { completed? }) -> Promise<{ type, typeCode,
//   operation?, operationCode?, stats }>: the current job (a migration, a
// save…), or with `completed` the last one that finished. `stats` has
// libvirt's fields: time_elapsed, data_total, data_processed, memory_*…
Napi::Value Connection::DomainGetJobStats(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    unsigned int flags =
        BoolOption(OptionsArg(info, 1), "completed") ? VIR_DOMAIN_JOB_STATS_COMPLETED : 0;
    return Submit(info.Env(), On<Domain>(uuid, [flags](virDomainPtr dom) -> Reply {
                    int type = VIR_DOMAIN_JOB_NONE;
                    virTypedParameterPtr raw = nullptr;
                    int count = 0;
                    if (virDomainGetJobStats(dom, &type, &raw, &count, flags) < 0) {
                      ThrowLastError("virDomainGetJobStats");
                    }
                    Params stats = CopyParams(raw, count);
                    virTypedParamsFree(raw, count);
                    return [type, stats = std::move(stats)](Napi::Env env) -> Napi::Value {
                      Napi::Object out = Napi::Object::New(env);
                      out.Set("type", kJobType.Find(type));
                      out.Set("typeCode", type);
                      if (std::optional<double> op = FindNumber(stats, VIR_DOMAIN_JOB_OPERATION)) {
                        out.Set("operation", kJobOperation.Find(static_cast<int>(*op)));
                        out.Set("operationCode", *op);
                      }
                      out.Set("stats", ParamsToJs(env, stats));
                      return out;
                    };
                  }));
  });
}

// domainAbortJob(uuid): aborts the domain's current job (a migration).
Napi::Value Connection::DomainAbortJob(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Domain>(LIBVIRT_CALL(virDomainAbortJob)));
}

}  // namespace virtfleet
