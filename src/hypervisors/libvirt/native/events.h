// Domain and connection events, from libvirt's event-loop thread to
// JavaScript.
//
// libvirt calls our callbacks on its event-loop thread. Each callback copies
// what it needs (the domain's identity, names for the numbers) and posts it to
// the connection's EventSink, a thread-safe function that calls the
// JavaScript listener on the JavaScript thread. Nothing waits: a slow listener
// never holds up libvirt's loop or other connections.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "session.h"
#include "tsfn-guard.h"

namespace virtfleet {

class EventSink {
 public:
  using Builder = std::function<Napi::Value(Napi::Env)>;

  // JavaScript thread. `listener` receives one object per event.
  static std::shared_ptr<EventSink> Create(Napi::Env env, Napi::Function listener);
  ~EventSink();
  EventSink(const EventSink&) = delete;
  EventSink& operator=(const EventSink&) = delete;

  // Any thread; never blocks. Dropped silently while Node shuts down.
  void Emit(Builder build);

 private:
  static void CallListener(Napi::Env env, Napi::Function listener, std::nullptr_t*,
                           Builder* build);
  using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Builder, &EventSink::CallListener>;
  EventSink(Tsfn tsfn, std::shared_ptr<TsfnGuard> guard) : tsfn_(tsfn), guard_(std::move(guard)) {}
  Tsfn tsfn_;
  std::shared_ptr<TsfnGuard> guard_;
};

// Worker thread. Registers the lifecycle, reboot, watchdog, I/O error, agent
// lifecycle and close callbacks on session.conn. Throws LibvirtError.
void SubscribeEvents(Session& session);
// Worker thread. Undoes SubscribeEvents; never throws.
void UnsubscribeEvents(Session& session);

}  // namespace virtfleet
