// Conversions between libvirt data and JavaScript values, and argument checks
// for the JavaScript-facing methods.
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <optional>
#include <string>

namespace virtfleet {

// How a domain is named to JavaScript. Calls take the UUID back; no libvirt
// handle ever leaves the binding.
struct DomainIdentity {
  std::string uuid;
  std::string name;
  int id;  // -1 when the domain is not running
};

// Reads the identity cached in a domain handle (no call to the host). Safe on
// any thread; nullopt if libvirt cannot tell (then its error is cleared).
std::optional<DomainIdentity> IdentityOfDomain(virDomainPtr dom);
// Same, throwing LibvirtError (worker threads).
DomainIdentity RequireIdentity(virDomainPtr dom);

Napi::Object ToJs(Napi::Env env, const DomainIdentity& domain);

// Argument checks: throw a JavaScript TypeError for a wrong type.
std::string StringArg(const Napi::CallbackInfo& info, std::size_t index, const char* name);
std::optional<std::string> OptionalStringArg(const Napi::CallbackInfo& info, std::size_t index,
                                             const char* name);
uint32_t Uint32Arg(const Napi::CallbackInfo& info, std::size_t index, const char* name);
int32_t Int32Arg(const Napi::CallbackInfo& info, std::size_t index, const char* name);
// The options object at `index`, or an empty one when it is undefined.
Napi::Object OptionsArg(const Napi::CallbackInfo& info, std::size_t index);
bool BoolOption(const Napi::Object& options, const char* name);
std::optional<std::string> StringOption(const Napi::Object& options, const char* name);
// A finite number >= 0 that is exact in a double (at most 2^53), or nullopt when absent.
std::optional<uint64_t> UnsignedOption(const Napi::Object& options, const char* name);

}  // namespace virtfleet
