// Per-environment state of the addon (one per Node.js environment that loads
// it: the main thread, each worker_thread).
#pragma once

#include <napi.h>

namespace virtfleet {

struct AddonData {
  Napi::FunctionReference errorClass;
  Napi::FunctionReference connectionClass;

  static AddonData& Of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace virtfleet
