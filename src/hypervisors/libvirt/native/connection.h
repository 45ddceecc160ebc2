// The JavaScript Connection class: one libvirt connection, its worker thread
// and its event sink. Methods check arguments on the JavaScript thread, queue
// the libvirt work on the worker and return a Promise.
//
// Method bodies are split by subject: connection.cc (open/close and the
// plumbing), host.cc (host and library facts), domain.cc (domains),
// migration.cc (migration and jobs), guest.cc (addresses, guest agent),
// stats.cc (statistics of all domains).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "events.h"
#include "worker.h"

namespace virtfleet {

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new Connection(listener): listener(event) receives domain and close events.
  explicit Connection(const Napi::CallbackInfo& info);
  ~Connection() override;

 private:
  // Runs `start` (argument checks, then Submit) and turns a thrown JavaScript
  // error into a rejected promise: every method reports failure the same way.
  Napi::Value Guard(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& start);
  // Queues work unless the connection was closed; then it rejects at once.
  Napi::Value Submit(Napi::Env env, Work work);

  // connection.cc
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);

  // host.cc
  Napi::Value SetKeepAlive(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  Napi::Value GetHostname(const Napi::CallbackInfo& info);
  Napi::Value GetURI(const Napi::CallbackInfo& info);
  Napi::Value GetCapabilities(const Napi::CallbackInfo& info);
  Napi::Value GetNodeInfo(const Napi::CallbackInfo& info);
  Napi::Value GetFreeMemory(const Napi::CallbackInfo& info);
  Napi::Value GetLibVersion(const Napi::CallbackInfo& info);
  Napi::Value GetVersion(const Napi::CallbackInfo& info);
  Napi::Value GetType(const Napi::CallbackInfo& info);

  // domain.cc
  Napi::Value ListAllDomains(const Napi::CallbackInfo& info);
  Napi::Value LookupDomainByUUID(const Napi::CallbackInfo& info);
  Napi::Value LookupDomainByName(const Napi::CallbackInfo& info);
  Napi::Value DefineXML(const Napi::CallbackInfo& info);
  Napi::Value DomainCreate(const Napi::CallbackInfo& info);
  Napi::Value DomainShutdown(const Napi::CallbackInfo& info);
  Napi::Value DomainReboot(const Napi::CallbackInfo& info);
  Napi::Value DomainDestroy(const Napi::CallbackInfo& info);
  Napi::Value DomainSuspend(const Napi::CallbackInfo& info);
  Napi::Value DomainResume(const Napi::CallbackInfo& info);
  Napi::Value DomainUndefine(const Napi::CallbackInfo& info);
  Napi::Value DomainGetState(const Napi::CallbackInfo& info);
  Napi::Value DomainGetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value DomainGetInfo(const Napi::CallbackInfo& info);
  Napi::Value DomainManagedSave(const Napi::CallbackInfo& info);
  Napi::Value DomainHasManagedSaveImage(const Napi::CallbackInfo& info);
  Napi::Value DomainManagedSaveRemove(const Napi::CallbackInfo& info);

  // migration.cc
  Napi::Value DomainMigrate(const Napi::CallbackInfo& info);
  Napi::Value DomainGetJobStats(const Napi::CallbackInfo& info);
  Napi::Value DomainAbortJob(const Napi::CallbackInfo& info);

  // guest.cc
  Napi::Value DomainInterfaceAddresses(const Napi::CallbackInfo& info);
  Napi::Value DomainAgentCommand(const Napi::CallbackInfo& info);

  // stats.cc
  Napi::Value GetAllDomainStats(const Napi::CallbackInfo& info);

  std::shared_ptr<Worker> worker_;
  bool opened_ = false;  // open() was called (successfully or not)
  bool closed_ = false;  // close() was called: no more calls are accepted
};

}  // namespace virtfleet
