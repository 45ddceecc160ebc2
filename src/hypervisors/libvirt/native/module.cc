// Entry point of the addon: prepares libvirt once per process (quiet error
// handler, event loop) and exports the Connection class.
#include <libvirt/libvirt.h>
#include <napi.h>

#include "addon-data.h"
#include "connection.h"
#include "errors.h"
#include "event-loop.h"

namespace virtfleet {

// setErrorClass(LibvirtError): the class used for every rejected call.
static Napi::Value SetErrorClassFn(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setErrorClass(cls): cls must be a constructor");
  }
  SetErrorClass(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Before the event loop, so that nothing libvirt reports ever reaches stderr.
  SilenceDefaultErrorHandler();
  // virInitialize makes libvirt safe to call from many threads at once.
  if (virInitialize() < 0) {
    throw Napi::Error::New(env, "virInitialize failed");
  }
  // The event loop must be registered before the first connection opens.
  const char* error = nullptr;
  if (!StartEventLoop(&error)) throw Napi::Error::New(env, error);

  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function connection = Connection::Define(env);
  data->connectionClass = Napi::Persistent(connection);

  unsigned long version = 0;
  if (virGetVersion(&version, nullptr, nullptr) < 0) {
    throw Napi::Error::New(env, "virGetVersion failed");
  }
  Napi::Object libraryVersion = Napi::Object::New(env);
  libraryVersion.Set("major", static_cast<double>(version / 1000000));
  libraryVersion.Set("minor", static_cast<double>((version / 1000) % 1000));
  libraryVersion.Set("micro", static_cast<double>(version % 1000));

  exports.Set("Connection", connection);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClassFn, "setErrorClass"));
  exports.Set("libraryVersion", libraryVersion);
  return exports;
}

}  // namespace virtfleet

// The macro needs an unqualified name.
static Napi::Object InitVirtfleetLibvirt(Napi::Env env, Napi::Object exports) {
  return virtfleet::Init(env, exports);
}
NODE_API_MODULE(virtfleet_libvirt, InitVirtfleetLibvirt)
