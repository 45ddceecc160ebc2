#include "convert.h"

#include <libvirt/virterror.h>

#include "errors.h"

namespace virtfleet {

std::optional<DomainIdentity> IdentityOfDomain(virDomainPtr dom) {
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) < 0) {
    virResetLastError();
    return std::nullopt;
  }
  const char* name = virDomainGetName(dom);
  if (name == nullptr) {
    virResetLastError();
    return std::nullopt;
  }
  unsigned int id = virDomainGetID(dom);
  return DomainIdentity{uuid, name, id == static_cast<unsigned int>(-1) ? -1 : static_cast<int>(id)};
}

DomainIdentity RequireIdentity(virDomainPtr dom) {
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) < 0) ThrowLastError("virDomainGetUUIDString");
  const char* name = virDomainGetName(dom);
  if (name == nullptr) ThrowLastError("virDomainGetName");
  unsigned int id = virDomainGetID(dom);
  return DomainIdentity{uuid, name, id == static_cast<unsigned int>(-1) ? -1 : static_cast<int>(id)};
}

Napi::Object ToJs(Napi::Env env, const DomainIdentity& domain) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("uuid", domain.uuid);
  out.Set("name", domain.name);
  out.Set("id", domain.id < 0 ? env.Null() : Napi::Number::New(env, domain.id));
  return out;
}

static Napi::Value Arg(const Napi::CallbackInfo& info, std::size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}

std::string StringArg(const Napi::CallbackInfo& info, std::size_t index, const char* name) {
  Napi::Value value = Arg(info, index);
  if (!value.IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  std::string out = value.As<Napi::String>().Utf8Value();
  // libvirt takes C strings: an embedded NUL would silently cut the value.
  if (out.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL");
  }
  return out;
}

std::optional<std::string> OptionalStringArg(const Napi::CallbackInfo& info, std::size_t index,
                                             const char* name) {
  Napi::Value value = Arg(info, index);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  return StringArg(info, index, name);
}

uint32_t Uint32Arg(const Napi::CallbackInfo& info, std::size_t index, const char* name) {
  Napi::Value value = Arg(info, index);
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer >= 0");
  }
  return static_cast<uint32_t>(d);
}

int32_t Int32Arg(const Napi::CallbackInfo& info, std::size_t index, const char* name) {
  Napi::Value value = Arg(info, index);
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) ||
      d != static_cast<double>(static_cast<int32_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a 32-bit integer");
  }
  return static_cast<int32_t>(d);
}

Napi::Object OptionsArg(const Napi::CallbackInfo& info, std::size_t index) {
  Napi::Value value = Arg(info, index);
  if (value.IsUndefined() || value.IsNull()) return Napi::Object::New(info.Env());
  if (!value.IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  return value.As<Napi::Object>();
}

bool BoolOption(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) {
    throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a boolean");
  }
  return value.As<Napi::Boolean>().Value();
}

std::optional<std::string> StringOption(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsString()) {
    throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a string");
  }
  std::string out = value.As<Napi::String>().Utf8Value();
  if (out.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(options.Env(), std::string(name) + " must not contain NUL");
  }
  return out;
}

std::optional<uint64_t> UnsignedOption(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a number");
  }
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740992.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(options.Env(),
                                std::string(name) + " must be a whole number from 0 to 2^53");
  }
  return static_cast<uint64_t>(d);
}

}  // namespace virtfleet
