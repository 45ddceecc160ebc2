// What the guest reports: its interface addresses (from DHCP leases, the
// guest agent or the host's ARP table) and raw guest-agent commands.
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>

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

struct Address {
  int type;
  std::string address;
  unsigned int prefix;
};

struct Interface {
  std::string name;
  std::string hwaddr;
  std::vector<Address> addresses;
};

}  // namespace

// domainInterfaceAddresses(uuid, { source? }) -> Promise<[{ name, hwaddr,
//   addresses: [{ type: 'ipv4' | 'ipv6', address, prefix }] }]>; source is
// 'lease' (default: the libvirt network's DHCP leases), 'agent' or 'arp'.
Napi::Value Connection::DomainInterfaceAddresses(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string source = StringOption(OptionsArg(info, 1), "source").value_or("lease");
    unsigned int src;
    if (source == "lease") {
      src = VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE;
    } else if (source == "agent") {
      src = VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT;
    } else if (source == "arp") {
      src = VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP;
    } else {
      throw Napi::TypeError::New(info.Env(), "source must be 'lease', 'agent' or 'arp'");
    }
    return Submit(info.Env(), On<Domain>(uuid, [src](virDomainPtr dom) -> Reply {
                    virDomainInterfacePtr* raw = nullptr;
                    int count = virDomainInterfaceAddresses(dom, &raw, src, 0);
                    if (count < 0) ThrowLastError("virDomainInterfaceAddresses");
                    std::vector<Interface> out;
                    for (int i = 0; i < count; i++) {
                      virDomainInterfacePtr iface = raw[i];
                      Interface copy{iface->name ? iface->name : "",
                                     iface->hwaddr ? iface->hwaddr : "", {}};
                      for (unsigned int j = 0; j < iface->naddrs; j++) {
                        const virDomainIPAddress& a = iface->addrs[j];
                        copy.addresses.push_back({a.type, a.addr ? a.addr : "", a.prefix});
                      }
                      out.push_back(std::move(copy));
                      virDomainInterfaceFree(iface);
                    }
                    free(raw);
                    return [out = std::move(out)](Napi::Env env) -> Napi::Value {
                      Napi::Array list = Napi::Array::New(env, out.size());
                      for (std::size_t i = 0; i < out.size(); i++) {
                        Napi::Object iface = Napi::Object::New(env);
                        iface.Set("name", out[i].name);
                        iface.Set("hwaddr", out[i].hwaddr);
                        Napi::Array addresses = Napi::Array::New(env, out[i].addresses.size());
                        for (std::size_t j = 0; j < out[i].addresses.size(); j++) {
                          const Address& a = out[i].addresses[j];
                          Napi::Object addr = Napi::Object::New(env);
                          addr.Set("type", kIPAddrType.Find(a.type));
                          addr.Set("address", a.address);
                          addr.Set("prefix", a.prefix);
                          addresses.Set(static_cast<uint32_t>(j), addr);
                        }
                        iface.Set("addresses", addresses);
                        list.Set(static_cast<uint32_t>(i), iface);
                      }
                      return list;
                    };
                  }));
  });
}

// domainAgentCommand(uuid, json, { timeoutSeconds? }) -> Promise<string>:
// sends one QEMU guest-agent command (JSON) and resolves with the agent's
// JSON reply. timeoutSeconds: -2 blocks, -1 libvirt's default (5 s), 0 does
// not wait, > 0 waits that long. (virDomainQemuAgentCommand, libvirt-qemu.)
Napi::Value Connection::DomainAgentCommand(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string command = StringArg(info, 1, "command");
    Napi::Object options = OptionsArg(info, 2);
    int timeout = VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT;
    Napi::Value t = options.Get("timeoutSeconds");
    if (!t.IsUndefined()) {
      if (!t.IsNumber()) throw Napi::TypeError::New(info.Env(), "timeoutSeconds must be a number");
      double d = t.As<Napi::Number>().DoubleValue();
      if (d != static_cast<double>(static_cast<int>(d)) || d < -2 || d > 86400) {
        throw Napi::RangeError::New(info.Env(), "timeoutSeconds must be a whole number from -2 to 86400");
      }
      timeout = static_cast<int>(d);
    }
    return Submit(info.Env(), On<Domain>(uuid, [command, timeout](virDomainPtr dom) -> Reply {
                    CString reply(virDomainQemuAgentCommand(dom, command.c_str(), timeout, 0));
                    if (!reply) ThrowLastError("virDomainQemuAgentCommand");
                    return StringReply(reply.get());
                  }));
  });
}

}  // namespace virtfleet
