// Naming libvirt objects from JavaScript: a domain by UUID, a pool or a network
// by name, a volume by key. No libvirt handle ever reaches JavaScript: each
// job looks its object up on the worker thread, acts, and frees the handle.
//
// One generic for every kind. A kind is a traits struct:
//   Ptr, Handle            the libvirt pointer and its owner (handles.h)
//   kKeyArg                the argument that names it ("uuid", "name", "key")
//   lookup                 the lookup by that key
//   Identity, IdentityOf   what JavaScript gets back for it (ToJs(env, Identity))
// and, for the calls that use them, listAll, lookupByName, defineXML +
// kDefineValidate, getAutostart, setAutostart, isActive, isPersistent,
// getXMLDesc + kXMLInactive, create, destroy, undefine. Each call is a
// LibvirtCall: the function and its name for errors, LIBVIRT_CALL(fn).
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "worker.h"

namespace virtfleet {

template <typename F>
struct LibvirtCall {
  F* fn;
  const char* name;
};
#define LIBVIRT_CALL(f) (::virtfleet::LibvirtCall<decltype(f)>{&f, #f})

// ---- replies ----

inline Reply StringReply(std::string text) {
  return [text = std::move(text)](Napi::Env env) -> Napi::Value {
    return Napi::String::New(env, text);
  };
}

inline Reply BoolReply(bool value) {
  return [value](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, value); };
}

// A pool's or a network's identity.
struct NamedIdentity {
  std::string name;
  std::string uuid;
};

inline Napi::Object ToJs(Napi::Env env, const NamedIdentity& identity) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", identity.name);
  out.Set("uuid", identity.uuid);
  return out;
}

// For any identity with a ToJs overload (found by argument-dependent lookup).
template <typename Identity>
Reply IdentityReply(Identity identity) {
  return [identity = std::move(identity)](Napi::Env env) -> Napi::Value {
    return ToJs(env, identity);
  };
}

// ---- calls ----

// A call returning an int, < 0 on failure (which throws).
template <typename F, typename... Args>
int Check(LibvirtCall<F> call, Args... args) {
  int rc = call.fn(args...);
  if (rc < 0) ThrowLastError(call.name);
  return rc;
}

// A call returning 1 (true) or 0 (false), < 0 on failure.
template <typename F, typename... Args>
bool IsTrue(LibvirtCall<F> call, Args... args) {
  return Check(call, args...) == 1;
}

// A list libvirt allocated (virConnectListAll…), each handle owned at once.
template <typename Handle>
std::vector<Handle> TakeList(typename Handle::pointer* raw, int count) {
  std::vector<Handle> out;
  out.reserve(count);
  for (int i = 0; i < count; i++) out.emplace_back(raw[i]);
  std::free(raw);
  return out;
}

template <typename Handle, typename F, typename... Args>
Handle TakeHandle(LibvirtCall<F> call, Args... args) {
  Handle h(call.fn(args...));
  if (!h) ThrowLastError(call.name);
  return h;
}

// ---- lookup-then-act jobs ----

template <typename K>
typename K::Handle Lookup(virConnectPtr conn, const std::string& key) {
  return TakeHandle<typename K::Handle>(K::lookup, conn, key.c_str());
}

// The key argument (argument 0), checked on the JavaScript thread.
template <typename K>
std::string KeyArg(const Napi::CallbackInfo& info) {
  return StringArg(info, 0, K::kKeyArg);
}

// Work that looks up the object `key` and hands it to `op`. The key also
// orders it after a side job on the same object (worker.h); keys of
// different kinds are not told apart, which at worst makes a call wait.
template <typename K, typename Op>
Work On(std::string key, Op op) {
  Work work = [key, op](Session& session) -> Reply {
    typename K::Handle h = Lookup<K>(RequireConnection(session), key);
    return op(h.get());
  };
  work.key = std::move(key);
  return work;
}

// call(object, args...); resolves with undefined.
template <typename K, typename F, typename... Args>
Work Act(std::string key, LibvirtCall<F> call, Args... args) {
  return On<K>(std::move(key), [call, args...](typename K::Ptr h) -> Reply {
    Check(call, h, args...);
    return nullptr;
  });
}

// call(object, args...) as a boolean (1 / 0).
template <typename K, typename F, typename... Args>
Work Ask(std::string key, LibvirtCall<F> call, Args... args) {
  return On<K>(std::move(key), [call, args...](typename K::Ptr h) -> Reply {
    return BoolReply(IsTrue(call, h, args...));
  });
}

// call(object, args...) returning a string the caller frees.
template <typename K, typename F, typename... Args>
Work Text(std::string key, LibvirtCall<F> call, Args... args) {
  return On<K>(std::move(key), [call, args...](typename K::Ptr h) -> Reply {
    CString text = TakeHandle<CString>(call, h, args...);
    return StringReply(text.get());
  });
}

// ---- jobs built from a method's arguments (Connection::Run) ----

// method(key): call(object, args...), for calls without arguments of their own.
template <typename K, typename F, typename... Args>
auto ActOn(LibvirtCall<F> call, Args... args) {
  return [call, args...](const Napi::CallbackInfo& info) -> Work {
    return Act<K>(KeyArg<K>(info), call, args...);
  };
}

// lookup…(key) -> identity
template <typename K>
Work LookupJob(const Napi::CallbackInfo& info) {
  return On<K>(KeyArg<K>(info), [](typename K::Ptr h) -> Reply {
    return IdentityReply(K::IdentityOf(h));
  });
}

// lookup…ByName(name) -> identity, for kinds named by something else.
template <typename K>
Work LookupByNameJob(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  return [name](Session& session) -> Reply {
    auto h = TakeHandle<typename K::Handle>(K::lookupByName, RequireConnection(session), name.c_str());
    return IdentityReply(K::IdentityOf(h.get()));
  };
}

// …DefineXML(xml, { validate? }) -> identity
template <typename K>
Work DefineXMLJob(const Napi::CallbackInfo& info) {
  std::string xml = StringArg(info, 0, "xml");
  unsigned int flags = BoolOption(OptionsArg(info, 1), "validate") ? K::kDefineValidate : 0;
  return [xml, flags](Session& session) -> Reply {
    auto h = TakeHandle<typename K::Handle>(K::defineXML, RequireConnection(session), xml.c_str(),
                                            flags);
    return IdentityReply(K::IdentityOf(h.get()));
  };
}

// …GetXMLDesc(key, { inactive? }) -> string
template <typename K>
Work XMLDescJob(const Napi::CallbackInfo& info) {
  std::string key = KeyArg<K>(info);
  unsigned int flags = BoolOption(OptionsArg(info, 1), "inactive") ? K::kXMLInactive : 0;
  return Text<K>(std::move(key), K::getXMLDesc, flags);
}

// …SetAutostart(key, boolean)
template <typename K>
Work SetAutostartJob(const Napi::CallbackInfo& info) {
  std::string key = KeyArg<K>(info);
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    throw Napi::TypeError::New(info.Env(), "autostart must be a boolean");
  }
  int autostart = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
  return Act<K>(std::move(key), K::setAutostart, autostart);
}

// …IsActive(key) -> boolean
template <typename K>
Work IsActiveJob(const Napi::CallbackInfo& info) {
  return Ask<K>(KeyArg<K>(info), K::isActive);
}

// list…() -> [{ ...identity, active, persistent, autostart }]
template <typename K>
Work ListAllJob(const Napi::CallbackInfo&) {
  struct Summary {
    typename K::Identity identity;
    bool active;
    bool persistent;
    bool autostart;
  };
  return [](Session& session) -> Reply {
    typename K::Ptr* raw = nullptr;
    int count = Check(K::listAll, RequireConnection(session), &raw, 0u);
    std::vector<typename K::Handle> all = TakeList<typename K::Handle>(raw, count);
    std::vector<Summary> out;
    for (typename K::Handle& h : all) {
      int autostart = 0;
      Check(K::getAutostart, h.get(), &autostart);
      out.push_back({K::IdentityOf(h.get()), IsTrue(K::isActive, h.get()),
                     IsTrue(K::isPersistent, h.get()), autostart != 0});
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
  };
}

// A pool's or a network's identity from its handle.
template <typename K>
NamedIdentity NamedIdentityOf(typename K::Ptr h) {
  const char* name = K::getName.fn(h);
  if (name == nullptr) ThrowLastError(K::getName.name);
  char uuid[VIR_UUID_STRING_BUFLEN];
  Check(K::getUUIDString, h, uuid);
  return {name, uuid};
}

// ---- domains ----

struct Domain {
  using Ptr = virDomainPtr;
  using Handle = DomainHandle;
  using Identity = DomainIdentity;
  static constexpr const char* kKeyArg = "uuid";
  static constexpr auto lookup = LIBVIRT_CALL(virDomainLookupByUUIDString);
  static constexpr auto lookupByName = LIBVIRT_CALL(virDomainLookupByName);
  static constexpr auto defineXML = LIBVIRT_CALL(virDomainDefineXMLFlags);
  static constexpr unsigned int kDefineValidate = VIR_DOMAIN_DEFINE_VALIDATE;
  static DomainIdentity IdentityOf(virDomainPtr dom) { return RequireIdentity(dom); }
};

}  // namespace virtfleet
