// Virtual networks, named by their name: each job looks the network up on the
// worker, acts, and frees the handle (virNetworkFree).
#include <libvirt/libvirt.h>

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "names.h"

namespace virtfleet {

namespace {

struct NetworkIdentity {
  std::string name;
  std::string uuid;
};

struct NetworkSummary {
  NetworkIdentity identity;
  bool active;
  bool persistent;
  bool autostart;
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

NetworkHandle LookupNetwork(virConnectPtr conn, const std::string& name) {
  NetworkHandle net(virNetworkLookupByName(conn, name.c_str()));
  if (!net) ThrowLastError("virNetworkLookupByName");
  return net;
}

template <typename Op>
Work OnNetwork(std::string name, Op op) {
  return [name = std::move(name), op](Session& session) -> Reply {
    NetworkHandle net = LookupNetwork(RequireConnection(session), name);
    return op(net.get());
  };
}

NetworkIdentity NetworkIdentityOf(virNetworkPtr net) {
  const char* name = virNetworkGetName(net);
  if (name == nullptr) ThrowLastError("virNetworkGetName");
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virNetworkGetUUIDString(net, uuid) < 0) ThrowLastError("virNetworkGetUUIDString");
  return {name, uuid};
}

Napi::Object ToJs(Napi::Env env, const NetworkIdentity& net) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", net.name);
  out.Set("uuid", net.uuid);
  return out;
}

Reply NetworkReply(NetworkIdentity identity) {
  return [identity = std::move(identity)](Napi::Env env) -> Napi::Value {
    return ToJs(env, identity);
  };
}

bool IsTrue(int rc, const char* what) {
  if (rc < 0) ThrowLastError(what);
  return rc == 1;
}

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
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      virNetworkPtr* raw = nullptr;
      int count = virConnectListAllNetworks(RequireConnection(session), &raw, 0);
      if (count < 0) ThrowLastError("virConnectListAllNetworks");
      std::vector<NetworkHandle> nets;
      nets.reserve(count);
      for (int i = 0; i < count; i++) nets.emplace_back(raw[i]);
      std::free(raw);
      std::vector<NetworkSummary> out;
      for (NetworkHandle& net : nets) {
        int autostart = 0;
        if (virNetworkGetAutostart(net.get(), &autostart) < 0) {
          ThrowLastError("virNetworkGetAutostart");
        }
        out.push_back({NetworkIdentityOf(net.get()),
                       IsTrue(virNetworkIsActive(net.get()), "virNetworkIsActive"),
                       IsTrue(virNetworkIsPersistent(net.get()), "virNetworkIsPersistent"),
                       autostart != 0});
      }
      return [out = std::move(out)](Napi::Env env) -> Napi::Value {
        Napi::Array list = Napi::Array::New(env, out.size());
        for (std::size_t i = 0; i < out.size(); i++) {
          Napi::Object item = ToJs(env, out[i].identity);
          item.Set("active", out[i].active);
          item.Set("persistent", out[i].persistent);
          item.Set("autostart", out[i].autostart);
          list.Set(static_cast<uint32_t>(i), item);
        }
        return list;
      };
    });
  });
}

Napi::Value Connection::LookupNetworkByName(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), OnNetwork(name, [](virNetworkPtr net) -> Reply {
                    return NetworkReply(NetworkIdentityOf(net));
                  }));
  });
}

// networkDefineXML(xml, { validate? }) -> Promise<{ name, uuid }>
Napi::Value Connection::NetworkDefineXML(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string xml = StringArg(info, 0, "xml");
    unsigned int flags =
        BoolOption(OptionsArg(info, 1), "validate") ? VIR_NETWORK_DEFINE_VALIDATE : 0;
    return Submit(info.Env(), [xml, flags](Session& session) -> Reply {
      NetworkHandle net(virNetworkDefineXMLFlags(RequireConnection(session), xml.c_str(), flags));
      if (!net) ThrowLastError("virNetworkDefineXMLFlags");
      return NetworkReply(NetworkIdentityOf(net.get()));
    });
  });
}

// networkCreate(name): starts a defined network.
Napi::Value Connection::NetworkCreate(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), OnNetwork(name, [](virNetworkPtr net) -> Reply {
                    if (virNetworkCreate(net) < 0) ThrowLastError("virNetworkCreate");
                    return nullptr;
                  }));
  });
}

Napi::Value Connection::NetworkDestroy(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), OnNetwork(name, [](virNetworkPtr net) -> Reply {
                    if (virNetworkDestroy(net) < 0) ThrowLastError("virNetworkDestroy");
                    return nullptr;
                  }));
  });
}

Napi::Value Connection::NetworkUndefine(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), OnNetwork(name, [](virNetworkPtr net) -> Reply {
                    if (virNetworkUndefine(net) < 0) ThrowLastError("virNetworkUndefine");
                    return nullptr;
                  }));
  });
}

// networkGetXMLDesc(name, { inactive? }) -> Promise<string>
Napi::Value Connection::NetworkGetXMLDesc(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    unsigned int flags = BoolOption(OptionsArg(info, 1), "inactive") ? VIR_NETWORK_XML_INACTIVE : 0;
    return Submit(info.Env(), OnNetwork(name, [flags](virNetworkPtr net) -> Reply {
                    CString xml(virNetworkGetXMLDesc(net, flags));
                    if (!xml) ThrowLastError("virNetworkGetXMLDesc");
                    return [text = std::string(xml.get())](Napi::Env env) -> Napi::Value {
                      return Napi::String::New(env, text);
                    };
                  }));
  });
}

Napi::Value Connection::NetworkIsActive(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), OnNetwork(name, [](virNetworkPtr net) -> Reply {
                    bool active = IsTrue(virNetworkIsActive(net), "virNetworkIsActive");
                    return [active](Napi::Env env) -> Napi::Value {
                      return Napi::Boolean::New(env, active);
                    };
                  }));
  });
}

Napi::Value Connection::NetworkSetAutostart(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    if (info.Length() < 2 || !info[1].IsBoolean()) {
      throw Napi::TypeError::New(info.Env(), "autostart must be a boolean");
    }
    int autostart = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
    return Submit(info.Env(), OnNetwork(name, [autostart](virNetworkPtr net) -> Reply {
                    if (virNetworkSetAutostart(net, autostart) < 0) {
                      ThrowLastError("virNetworkSetAutostart");
                    }
                    return nullptr;
                  }));
  });
}

// networkGetDHCPLeases(name, { mac? }) -> Promise<[{ iface, expiryTime,
//   type, mac, iaid, address, prefix, hostname, clientId }]>; expiryTime is
// seconds since the epoch.
Napi::Value Connection::NetworkGetDHCPLeases(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    std::optional<std::string> mac = StringOption(OptionsArg(info, 1), "mac");
    return Submit(info.Env(), OnNetwork(name, [mac](virNetworkPtr net) -> Reply {
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
