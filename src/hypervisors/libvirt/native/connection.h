// The JavaScript Connection class: one libvirt connection, its worker thread
// and its event sink. Methods check arguments on the JavaScript thread, queue
// the libvirt work on the worker and return a Promise.
//
// Method bodies are split by subject: connection.cc (open/close and the
// plumbing), host.cc (host and library facts), domain.cc (domains),
// migration.cc (migration and jobs), guest.cc (addresses, guest agent),
// stats.cc (statistics of all domains), storage.cc (pools and volumes),
// network.cc (networks), snapshot.cc (snapshots), console.cc (console streams).
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
  // Guard + Submit of the work `job(info)` builds (it checks the arguments).
  template <typename Job>
  Napi::Value Run(const Napi::CallbackInfo& info, Job job) {
    return Guard(info, [&]() -> Napi::Value { return Submit(info.Env(), job(info)); });
  }

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
  Napi::Value DomainSetMemoryFlags(const Napi::CallbackInfo& info);
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

  // storage.cc
  Napi::Value ListStoragePools(const Napi::CallbackInfo& info);
  Napi::Value LookupStoragePoolByName(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolDefineXML(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolBuild(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolCreate(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolDestroy(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolUndefine(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolDelete(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolRefresh(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolGetInfo(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolGetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolSetAutostart(const Napi::CallbackInfo& info);
  Napi::Value StoragePoolListVolumes(const Napi::CallbackInfo& info);
  Napi::Value StorageVolCreateXML(const Napi::CallbackInfo& info);
  Napi::Value StorageVolCreateXMLFrom(const Napi::CallbackInfo& info);
  Napi::Value LookupStorageVolByKey(const Napi::CallbackInfo& info);
  Napi::Value LookupStorageVolByName(const Napi::CallbackInfo& info);
  Napi::Value LookupStorageVolByPath(const Napi::CallbackInfo& info);
  Napi::Value StorageVolDelete(const Napi::CallbackInfo& info);
  Napi::Value StorageVolGetInfo(const Napi::CallbackInfo& info);
  Napi::Value StorageVolGetPath(const Napi::CallbackInfo& info);
  Napi::Value StorageVolGetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value StorageVolResize(const Napi::CallbackInfo& info);
  Napi::Value StorageVolUpload(const Napi::CallbackInfo& info);
  Napi::Value StorageVolDownload(const Napi::CallbackInfo& info);

  // network.cc
  Napi::Value ListNetworks(const Napi::CallbackInfo& info);
  Napi::Value LookupNetworkByName(const Napi::CallbackInfo& info);
  Napi::Value NetworkDefineXML(const Napi::CallbackInfo& info);
  Napi::Value NetworkCreate(const Napi::CallbackInfo& info);
  Napi::Value NetworkDestroy(const Napi::CallbackInfo& info);
  Napi::Value NetworkUndefine(const Napi::CallbackInfo& info);
  Napi::Value NetworkGetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value NetworkIsActive(const Napi::CallbackInfo& info);
  Napi::Value NetworkSetAutostart(const Napi::CallbackInfo& info);
  Napi::Value NetworkGetDHCPLeases(const Napi::CallbackInfo& info);

  // snapshot.cc
  Napi::Value DomainSnapshotCreateXML(const Napi::CallbackInfo& info);
  Napi::Value DomainSnapshotListNames(const Napi::CallbackInfo& info);
  Napi::Value DomainSnapshotCurrent(const Napi::CallbackInfo& info);
  Napi::Value DomainSnapshotGetParent(const Napi::CallbackInfo& info);
  Napi::Value DomainSnapshotGetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value DomainSnapshotRevert(const Napi::CallbackInfo& info);
  Napi::Value DomainSnapshotDelete(const Napi::CallbackInfo& info);

  // console.cc
  Napi::Value DomainOpenConsole(const Napi::CallbackInfo& info);
  Napi::Value ConsoleWrite(const Napi::CallbackInfo& info);
  Napi::Value ConsoleClose(const Napi::CallbackInfo& info);

  std::shared_ptr<Worker> worker_;
  bool opened_ = false;  // open() was called (successfully or not)
  bool closed_ = false;  // close() was called: no more calls are accepted
};

}  // namespace virtfleet
