// Virtual networks, named by their name: each job looks the network up on the
// worker, acts, and frees the handle (virNetworkFree). The calls that pools
// share are the generic ones of named-object.h.
#include <libvirt/libvirt.h>

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "named-object.h"
#include "names.h"

namespace virtfleet {

namespace {

struct Network {
  using Ptr = virNetworkPtr;
  using Handle = NetworkHandle;
  using Identity = NamedIdentity;
  static constexpr const char* kKeyArg = "name";
  static constexpr auto lookup = LIBVIRT_CALL(virNetworkLookupByName);
  static constexpr auto listAll = LIBVIRT_CALL(virConnectListAllNetworks);
  static constexpr auto defineXML = LIBVIRT_CALL(virNetworkDefineXMLFlags);
  static constexpr unsigned int kDefineValidate = VIR_NETWORK_DEFINE_VALIDATE;
  static constexpr auto create = LIBVIRT_CALL(virNetworkCreate);
  static constexpr auto destroy = LIBVIRT_CALL(virNetworkDestroy);
  static constexpr auto undefine = LIBVIRT_CALL(virNetworkUndefine);
  static constexpr auto getAutostart = LIBVIRT_CALL(virNetworkGetAutostart);
  static constexpr auto setAutostart = LIBVIRT_CALL(virNetworkSetAutostart);
  static constexpr auto isActive = LIBVIRT_CALL(virNetworkIsActive);
  static constexpr auto isPersistent = LIBVIRT_CALL(virNetworkIsPersistent);
  static constexpr auto getXMLDesc = LIBVIRT_CALL(virNetworkGetXMLDesc);
  static constexpr unsigned int kXMLInactive = VIR_NETWORK_XML_INACTIVE;
  static constexpr auto getName = LIBVIRT_CALL(virNetworkGetName);
  static constexpr auto getUUIDString = LIBVIRT_CALL(virNetworkGetUUIDString);
  static NamedIdentity IdentityOf(virNetworkPtr net) { return NamedIdentityOf<Network>(net); }
};

struct Lease {
  std::string iface;
  long long expiryTime;
  int type;
  std::string mac;
  std::optional<std::string> iaid;
  std::string address;
  unsigned int prefix;
  std::optional<std::string> hostname;
  std::optional<std::string> clientId;
};

std::optional<std::string> Opt(const char* s) {
  if (s == nullptr) return std::nullopt;
  return std::string(s);
}

Napi::Value OptToJs(Napi::Env env, const std::optional<std::string>& s) {
  return s ? Napi::String::New(env, *s) : env.Null();
}

}  // namespace

// listNetworks() -> Promise<[{ name, uuid, active, persistent, autostart }]>
Napi::Value Connection::ListNetworks(const Napi::CallbackInfo& info) {
  return Run(info, ListAllJob<Network>);
}

// lookupNetworkByName(name) -> Promise<{ name, uuid }>
Napi::Value Connection::LookupNetworkByName(const Napi::CallbackInfo& info) {
  return Run(info, LookupJob<Network>);
}

// networkDefineXML(xml, { validate? }) -> Promise<{ name, uuid }>
Napi::Value Connection::NetworkDefineXML(const Napi::CallbackInfo& info) {
  return Run(info, DefineXMLJob<Network>);
}

// networkCreate(name): starts a defined network.
Napi::Value Connection::NetworkCreate(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Network>(Network::create));
}

Napi::Value Connection::NetworkDestroy(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Network>(Network::destroy));
}

Napi::Value Connection::NetworkUndefine(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Network>(Network::undefine));
}

// networkGetXMLDesc(name, { inactive? }) -> Promise<string>
Napi::Value Connection::NetworkGetXMLDesc(const Napi::CallbackInfo& info) {
  return Run(info, XMLDescJob<Network>);
}

Napi::Value Connection::NetworkIsActive(const Napi::CallbackInfo& info) {
  return Run(info, IsActiveJob<Network>);
}

Napi::Value Connection::NetworkSetAutostart(const Napi::CallbackInfo& info) {
  return Run(info, SetAutostartJob<Network>);
}

// networkGetDHCPLeases(name, { mac? }) -> Promise<[{ iface, expiryTime,
//   type, mac, iaid, address, prefix, hostname, clientId }]>; expiryTime is
// seconds since the epoch.
Napi::Value Connection::NetworkGetDHCPLeases(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    std::optional<std::string> mac = StringOption(OptionsArg(info, 1), "mac");
    return Submit(info.Env(), On<Network>(name, [mac](virNetworkPtr net) -> Reply {
                    virNetworkDHCPLeasePtr* raw = nullptr;
                    int count = virNetworkGetDHCPLeases(net, mac ? mac->c_str() : nullptr, &raw, 0);
                    if (count < 0) ThrowLastError("virNetworkGetDHCPLeases");
                    std::vector<Lease> out;
                    for (int i = 0; i < count; i++) {
                      virNetworkDHCPLeasePtr l = raw[i];
                      out.push_back({l->iface ? l->iface : "", l->expirytime, l->type,
                                     l->mac ? l->mac : "", Opt(l->iaid),
                                     l->ipaddr ? l->ipaddr : "", l->prefix, Opt(l->hostname),
                                     Opt(l->clientid)});
                      virNetworkDHCPLeaseFree(l);
                    }
                    std::free(raw);
                    return [out = std::move(out)](Napi::Env env) -> Napi::Value {
                      Napi::Array list = Napi::Array::New(env, out.size());
                      for (std::size_t i = 0; i < out.size(); i++) {
                        const Lease& l = out[i];
                        Napi::Object item = Napi::Object::New(env);
                        item.Set("iface", l.iface);
                        item.Set("expiryTime", static_cast<double>(l.expiryTime));
                        item.Set("type", kIPAddrType.Find(l.type));
                        item.Set("mac", l.mac);
                        item.Set("iaid", OptToJs(env, l.iaid));
                        item.Set("address", l.address);
                        item.Set("prefix", l.prefix);
                        item.Set("hostname", OptToJs(env, l.hostname));
                        item.Set("clientId", OptToJs(env, l.clientId));
                        list.Set(static_cast<uint32_t>(i), item);
                      }
                      return list;
                    };
                  }));
  });
}

}  // namespace virtfleet
