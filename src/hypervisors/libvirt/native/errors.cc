#include "errors.h"

#include "addon-data.h"
#include "names.h"

namespace virtfleet {

LibvirtError TakeLastError(const char* what) {
  virErrorPtr err = virGetLastError();
  if (err == nullptr || err->code == VIR_ERR_OK) {
    return MakeError(VIR_ERR_INTERNAL_ERROR,
                     std::string(what) + " failed without a libvirt error");
  }
  LibvirtError out{err->code, err->domain, err->level,
                   err->message != nullptr ? err->message : "unknown libvirt error"};
  // Reset so that a later call on this thread cannot see a stale error.
  virResetLastError();
  return out;
}

void ThrowLastError(const char* what) { throw TakeLastError(what); }

LibvirtError MakeError(int code, const std::string& message) {
  return LibvirtError{code, VIR_FROM_NONE, VIR_ERR_ERROR, message};
}

static void DropError(void* /*userData*/, virErrorPtr /*error*/) {}

void SilenceDefaultErrorHandler() { virSetErrorFunc(nullptr, DropError); }

void SetErrorClass(Napi::Env env, Napi::Function errorClass) {
  AddonData::Of(env).errorClass = Napi::Persistent(errorClass);
}

Napi::Value ToJsError(Napi::Env env, const LibvirtError& error) {
  Napi::Object details = Napi::Object::New(env);
  details.Set("code", error.code);
  details.Set("codeName", kErrorCode.Find(error.code));
  details.Set("domain", error.domain);
  details.Set("domainName", kErrorDomain.Find(error.domain));
  details.Set("level", error.level);

  Napi::FunctionReference& errorClass = AddonData::Of(env).errorClass;
  if (!errorClass.IsEmpty()) {
    return errorClass.New({Napi::String::New(env, error.message), details});
  }
  Napi::Object plain = Napi::Error::New(env, error.message).Value();
  for (const char* key : {"code", "codeName", "domain", "domainName", "level"}) {
    plain.Set(key, details.Get(key));
  }
  return plain;
}

}  // namespace virtfleet
