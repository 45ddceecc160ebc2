// Statistics for every domain of a host in one call (one round trip to a
// remote host): virConnectGetAllDomainStats.
#include <libvirt/libvirt.h>

#include <string>
#include <vector>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "params.h"

namespace virtfleet {

namespace {

struct StatsGroup {
  const char* name;
  unsigned int flag;
};

const StatsGroup kStatsGroups[] = {
    {"state", VIR_DOMAIN_STATS_STATE},     {"cpuTotal", VIR_DOMAIN_STATS_CPU_TOTAL},
    {"balloon", VIR_DOMAIN_STATS_BALLOON}, {"vcpu", VIR_DOMAIN_STATS_VCPU},
    {"interface", VIR_DOMAIN_STATS_INTERFACE}, {"block", VIR_DOMAIN_STATS_BLOCK},
    {"perf", VIR_DOMAIN_STATS_PERF},       {"iothread", VIR_DOMAIN_STATS_IOTHREAD},
    {"memory", VIR_DOMAIN_STATS_MEMORY},   {"dirtyrate", VIR_DOMAIN_STATS_DIRTYRATE},
};

struct StatsFilter {
  const char* name;
  unsigned int flag;
};

const StatsFilter kStatsFilters[] = {
    {"active", VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE},
    {"inactive", VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE},
    {"persistent", VIR_CONNECT_GET_ALL_DOMAINS_STATS_PERSISTENT},
    {"transient", VIR_CONNECT_GET_ALL_DOMAINS_STATS_TRANSIENT},
    {"running", VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING},
    {"paused", VIR_CONNECT_GET_ALL_DOMAINS_STATS_PAUSED},
    {"shutoff", VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF},
    {"other", VIR_CONNECT_GET_ALL_DOMAINS_STATS_OTHER},
    {"enforce", VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS},
    {"nowait", VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT},
};

struct DomainStats {
  DomainIdentity identity;
  Params stats;
};

}  // namespace

// getAllDomainStats({ groups?, active?, inactive?, persistent?, transient?,
//   running?, paused?, shutoff?, other?, enforce?, nowait? }) ->
// Promise<[{ domain, stats }]>. groups: 'state', 'cpuTotal', 'balloon',
// 'vcpu', 'interface', 'block', 'perf', 'iothread', 'memory', 'dirtyrate'
// (all that the driver has when omitted); stats keeps libvirt's field names
// ("state.state", "cpu.time", "balloon.current", "block.0.rd.bytes"…).
Napi::Value Connection::GetAllDomainStats(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Object options = OptionsArg(info, 0);
    unsigned int groups = 0;
    Napi::Value requested = options.Get("groups");
    if (!requested.IsUndefined()) {
      if (!requested.IsArray()) throw Napi::TypeError::New(info.Env(), "groups must be an array");
      Napi::Array list = requested.As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); i++) {
        Napi::Value item = list.Get(i);
        std::string name = item.IsString() ? item.As<Napi::String>().Utf8Value() : "";
        bool known = false;
        for (const StatsGroup& g : kStatsGroups) {
          if (name == g.name) {
            groups |= g.flag;
            known = true;
          }
        }
        if (!known) throw Napi::TypeError::New(info.Env(), "unknown stats group: " + name);
      }
    }
    unsigned int flags = 0;
    for (const StatsFilter& f : kStatsFilters) {
      if (BoolOption(options, f.name)) flags |= f.flag;
    }
    return Submit(info.Env(), [groups, flags](Session& session) -> Reply {
      virDomainStatsRecordPtr* raw = nullptr;
      int count = virConnectGetAllDomainStats(RequireConnection(session), groups, &raw, flags);
      if (count < 0) ThrowLastError("virConnectGetAllDomainStats");
      StatsRecords records(raw);
      std::vector<DomainStats> out;
      out.reserve(count);
      for (int i = 0; i < count; i++) {
        out.push_back({RequireIdentity(raw[i]->dom), CopyParams(raw[i]->params, raw[i]->nparams)});
      }
      return [out = std::move(out)](Napi::Env env) -> Napi::Value {
        Napi::Array list = Napi::Array::New(env, out.size());
        for (std::size_t i = 0; i < out.size(); i++) {
          Napi::Object item = Napi::Object::New(env);
          item.Set("domain", ToJs(env, out[i].identity));
          item.Set("stats", ParamsToJs(env, out[i].stats));
          list.Set(static_cast<uint32_t>(i), item);
        }
        return list;
      };
    });
  });
}

}  // namespace virtfleet
