// When a Node.js environment shuts down, Node finalizes and frees every
// thread-safe function at once, even those that other threads still hold (a
// worker stuck on a hung host, libvirt's event-loop thread). Calling one after
// that is a use-after-free. So every call from another thread, and the final
// Release, goes through a guard that the finalizer closes first, under the
// same lock.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>

namespace virtfleet {

struct TsfnGuard {
  std::mutex mutex;
  bool finalized = false;

  // Passed to TypedThreadSafeFunction::New as its finalizer, with a heap copy
  // of the guard's shared_ptr as finalizer data.
  template <typename Context>
  static void Finalize(Napi::Env, std::shared_ptr<TsfnGuard>* guard, Context*) {
    {
      std::lock_guard<std::mutex> lock((*guard)->mutex);
      (*guard)->finalized = true;
    }
    delete guard;
  }
};

}  // namespace virtfleet
