#include "events.h"

#include <libvirt/libvirt.h>

#include <string>

#include "convert.h"
#include "errors.h"
#include "names.h"

namespace virtfleet {

std::shared_ptr<EventSink> EventSink::Create(Napi::Env env, Napi::Function listener) {
  auto guard = std::make_shared<TsfnGuard>();
  Tsfn tsfn = Tsfn::New(env, listener, "virtfleet-libvirt-events", 0, 1, nullptr,
                        &TsfnGuard::Finalize<std::nullptr_t>,
                        new std::shared_ptr<TsfnGuard>(guard));
  // Events alone do not keep Node running (as with an unref'd socket): a
  // program that wants them is busy with its connection anyway.
  tsfn.Unref(env);
  return std::shared_ptr<EventSink>(new EventSink(tsfn, std::move(guard)));
}

// The last reference may go on any thread (libvirt frees callback data on
// its event-loop thread); releasing a thread-safe function is allowed there.
EventSink::~EventSink() {
  std::lock_guard<std::mutex> lock(guard_->mutex);
  if (!guard_->finalized) tsfn_.Release();
}

void EventSink::Emit(Builder build) {
  auto* data = new Builder(std::move(build));
  std::lock_guard<std::mutex> lock(guard_->mutex);
  if (guard_->finalized || tsfn_.NonBlockingCall(data) != napi_ok) delete data;
}

void EventSink::CallListener(Napi::Env env, Napi::Function listener, std::nullptr_t*,
                             Builder* raw) {
  std::unique_ptr<Builder> build(raw);
  if (env == nullptr) return;
  Napi::HandleScope scope(env);
  try {
    listener.Call({(*build)(env)});
  } catch (const Napi::Error& error) {
    // A throwing listener is an uncaught exception, as with an EventEmitter
    // whose listener throws during an asynchronous emit.
    napi_fatal_exception(env, error.Value());
  }
}

// ---- libvirt callbacks (event-loop thread) ----

static EventSink& SinkOf(void* opaque) {
  return **static_cast<std::shared_ptr<EventSink>*>(opaque);
}

static void FreeSinkRef(void* opaque) { delete static_cast<std::shared_ptr<EventSink>*>(opaque); }

static int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  std::optional<DomainIdentity> domain = IdentityOfDomain(dom);
  if (!domain) return 0;
  SinkOf(opaque).Emit([domain = *domain, event, detail](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", "lifecycle");
    out.Set("domain", ToJs(env, domain));
    out.Set("event", kEventType.Find(event));
    out.Set("detail", EventDetailName(event, detail));
    out.Set("eventCode", event);
    out.Set("detailCode", detail);
    return out;
  });
  return 0;
}

static void OnReboot(virConnectPtr, virDomainPtr dom, void* opaque) {
  std::optional<DomainIdentity> domain = IdentityOfDomain(dom);
  if (!domain) return;
  SinkOf(opaque).Emit([domain = *domain](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", "reboot");
    out.Set("domain", ToJs(env, domain));
    return out;
  });
}

static void OnWatchdog(virConnectPtr, virDomainPtr dom, int action, void* opaque) {
  std::optional<DomainIdentity> domain = IdentityOfDomain(dom);
  if (!domain) return;
  SinkOf(opaque).Emit([domain = *domain, action](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", "watchdog");
    out.Set("domain", ToJs(env, domain));
    out.Set("action", kWatchdogAction.Find(action));
    out.Set("actionCode", action);
    return out;
  });
}

static void OnIOError(virConnectPtr, virDomainPtr dom, const char* srcPath, const char* devAlias,
                      int action, const char* reason, void* opaque) {
  std::optional<DomainIdentity> domain = IdentityOfDomain(dom);
  if (!domain) return;
  SinkOf(opaque).Emit([domain = *domain, srcPath = std::string(srcPath ? srcPath : ""),
                       devAlias = std::string(devAlias ? devAlias : ""), action,
                       reason = std::string(reason ? reason : "")](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", "ioError");
    out.Set("domain", ToJs(env, domain));
    out.Set("srcPath", srcPath);
    out.Set("devAlias", devAlias);
    out.Set("action", kIOErrorAction.Find(action));
    out.Set("actionCode", action);
    out.Set("reason", reason);
    return out;
  });
}

static void OnAgentLifecycle(virConnectPtr, virDomainPtr dom, int state, int reason,
                             void* opaque) {
  std::optional<DomainIdentity> domain = IdentityOfDomain(dom);
  if (!domain) return;
  SinkOf(opaque).Emit([domain = *domain, state, reason](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", "agentLifecycle");
    out.Set("domain", ToJs(env, domain));
    out.Set("state", kAgentState.Find(state));
    out.Set("reason", kAgentReason.Find(reason));
    out.Set("stateCode", state);
    out.Set("reasonCode", reason);
    return out;
  });
}

static void OnClose(virConnectPtr, int reason, void* opaque) {
  SinkOf(opaque).Emit([reason](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", "close");
    out.Set("reason", kCloseReason.Find(reason));
    out.Set("reasonCode", reason);
    return out;
  });
}

// ---- registration (worker thread) ----

static void Register(Session& session, int eventId, virConnectDomainEventGenericCallback cb) {
  auto* opaque = new std::shared_ptr<EventSink>(session.events);
  int id = virConnectDomainEventRegisterAny(session.conn, nullptr, eventId, cb, opaque,
                                            FreeSinkRef);
  if (id < 0) {
    // libvirt calls the free callback only for registrations that succeeded.
    delete opaque;
    ThrowLastError("virConnectDomainEventRegisterAny");
  }
  session.domainCallbackIds.push_back(id);
}

void SubscribeEvents(Session& session) {
  Register(session, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle));
  Register(session, VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_CALLBACK(OnReboot));
  Register(session, VIR_DOMAIN_EVENT_ID_WATCHDOG, VIR_DOMAIN_EVENT_CALLBACK(OnWatchdog));
  Register(session, VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, VIR_DOMAIN_EVENT_CALLBACK(OnIOError));
  Register(session, VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE,
           VIR_DOMAIN_EVENT_CALLBACK(OnAgentLifecycle));

  // The close callback's data is owned by the session, not handed to libvirt
  // with a free callback: drivers without close callbacks (test:///) accept
  // the registration and would never free it. Unregistering waits for a
  // running callback, so deleting it after that is safe.
  auto* opaque = new std::shared_ptr<EventSink>(session.events);
  if (virConnectRegisterCloseCallback(session.conn, OnClose, opaque, nullptr) < 0) {
    delete opaque;
    ThrowLastError("virConnectRegisterCloseCallback");
  }
  session.closeCallbackOpaque = opaque;
}

void UnsubscribeEvents(Session& session) {
  for (int id : session.domainCallbackIds) {
    // The free callback drops the sink reference once libvirt is done with it.
    if (virConnectDomainEventDeregisterAny(session.conn, id) < 0) virResetLastError();
  }
  session.domainCallbackIds.clear();
  if (session.closeCallbackOpaque != nullptr) {
    if (virConnectUnregisterCloseCallback(session.conn, OnClose) == 0) {
      delete session.closeCallbackOpaque;
    } else {
      // Still registered as far as we know: leaking the small sink reference
      // is safer than freeing what a later callback would read.
      virResetLastError();
    }
    session.closeCallbackOpaque = nullptr;
  }
}

}  // namespace virtfleet
