#include "connection.h"

#include "addon-data.h"
#include "convert.h"
#include "errors.h"

namespace virtfleet {

Napi::Function Connection::Define(Napi::Env env) {
  return DefineClass(
      env, "Connection",
      {
          InstanceMethod<&Connection::Open>("open"),
          InstanceMethod<&Connection::Close>("close"),
          InstanceMethod<&Connection::IsClosed>("isClosed"),
          InstanceMethod<&Connection::SetKeepAlive>("setKeepAlive"),
          InstanceMethod<&Connection::IsAlive>("isAlive"),
          InstanceMethod<&Connection::GetHostname>("getHostname"),
          InstanceMethod<&Connection::GetURI>("getURI"),
          InstanceMethod<&Connection::GetCapabilities>("getCapabilities"),
          InstanceMethod<&Connection::GetNodeInfo>("getNodeInfo"),
          InstanceMethod<&Connection::GetFreeMemory>("getFreeMemory"),
          InstanceMethod<&Connection::GetLibVersion>("getLibVersion"),
          InstanceMethod<&Connection::GetVersion>("getVersion"),
          InstanceMethod<&Connection::GetType>("getType"),
          InstanceMethod<&Connection::ListAllDomains>("listAllDomains"),
          InstanceMethod<&Connection::LookupDomainByUUID>("lookupDomainByUUID"),
          InstanceMethod<&Connection::LookupDomainByName>("lookupDomainByName"),
          InstanceMethod<&Connection::DefineXML>("defineXML"),
          InstanceMethod<&Connection::DomainCreate>("domainCreate"),
          InstanceMethod<&Connection::DomainShutdown>("domainShutdown"),
          InstanceMethod<&Connection::DomainReboot>("domainReboot"),
          InstanceMethod<&Connection::DomainDestroy>("domainDestroy"),
          InstanceMethod<&Connection::DomainSuspend>("domainSuspend"),
          InstanceMethod<&Connection::DomainResume>("domainResume"),
          InstanceMethod<&Connection::DomainUndefine>("domainUndefine"),
          InstanceMethod<&Connection::DomainGetState>("domainGetState"),
          InstanceMethod<&Connection::DomainGetXMLDesc>("domainGetXMLDesc"),
          InstanceMethod<&Connection::DomainGetInfo>("domainGetInfo"),
          InstanceMethod<&Connection::DomainSetMemoryFlags>("domainSetMemoryFlags"),
          InstanceMethod<&Connection::DomainManagedSave>("domainManagedSave"),
          InstanceMethod<&Connection::DomainHasManagedSaveImage>("domainHasManagedSaveImage"),
          InstanceMethod<&Connection::DomainManagedSaveRemove>("domainManagedSaveRemove"),
          InstanceMethod<&Connection::DomainMigrate>("domainMigrate"),
          InstanceMethod<&Connection::DomainGetJobStats>("domainGetJobStats"),
          InstanceMethod<&Connection::DomainAbortJob>("domainAbortJob"),
          InstanceMethod<&Connection::DomainInterfaceAddresses>("domainInterfaceAddresses"),
          InstanceMethod<&Connection::DomainAgentCommand>("domainAgentCommand"),
          InstanceMethod<&Connection::GetAllDomainStats>("getAllDomainStats"),
          InstanceMethod<&Connection::ListStoragePools>("listStoragePools"),
          InstanceMethod<&Connection::LookupStoragePoolByName>("lookupStoragePoolByName"),
          InstanceMethod<&Connection::StoragePoolDefineXML>("storagePoolDefineXML"),
          InstanceMethod<&Connection::StoragePoolBuild>("storagePoolBuild"),
          InstanceMethod<&Connection::StoragePoolCreate>("storagePoolCreate"),
          InstanceMethod<&Connection::StoragePoolDestroy>("storagePoolDestroy"),
          InstanceMethod<&Connection::StoragePoolUndefine>("storagePoolUndefine"),
          InstanceMethod<&Connection::StoragePoolDelete>("storagePoolDelete"),
          InstanceMethod<&Connection::StoragePoolRefresh>("storagePoolRefresh"),
          InstanceMethod<&Connection::StoragePoolGetInfo>("storagePoolGetInfo"),
          InstanceMethod<&Connection::StoragePoolGetXMLDesc>("storagePoolGetXMLDesc"),
          InstanceMethod<&Connection::StoragePoolSetAutostart>("storagePoolSetAutostart"),
          InstanceMethod<&Connection::StoragePoolListVolumes>("storagePoolListVolumes"),
          InstanceMethod<&Connection::StorageVolCreateXML>("storageVolCreateXML"),
          InstanceMethod<&Connection::StorageVolCreateXMLFrom>("storageVolCreateXMLFrom"),
          InstanceMethod<&Connection::LookupStorageVolByKey>("lookupStorageVolByKey"),
          InstanceMethod<&Connection::LookupStorageVolByName>("lookupStorageVolByName"),
          InstanceMethod<&Connection::LookupStorageVolByPath>("lookupStorageVolByPath"),
          InstanceMethod<&Connection::StorageVolDelete>("storageVolDelete"),
          InstanceMethod<&Connection::StorageVolGetInfo>("storageVolGetInfo"),
          InstanceMethod<&Connection::StorageVolGetPath>("storageVolGetPath"),
          InstanceMethod<&Connection::StorageVolGetXMLDesc>("storageVolGetXMLDesc"),
          InstanceMethod<&Connection::StorageVolResize>("storageVolResize"),
          InstanceMethod<&Connection::StorageVolUpload>("storageVolUpload"),
          InstanceMethod<&Connection::StorageVolDownload>("storageVolDownload"),
          InstanceMethod<&Connection::ListNetworks>("listNetworks"),
          InstanceMethod<&Connection::LookupNetworkByName>("lookupNetworkByName"),
          InstanceMethod<&Connection::NetworkDefineXML>("networkDefineXML"),
          InstanceMethod<&Connection::NetworkCreate>("networkCreate"),
          InstanceMethod<&Connection::NetworkDestroy>("networkDestroy"),
          InstanceMethod<&Connection::NetworkUndefine>("networkUndefine"),
          InstanceMethod<&Connection::NetworkGetXMLDesc>("networkGetXMLDesc"),
          InstanceMethod<&Connection::NetworkIsActive>("networkIsActive"),
          InstanceMethod<&Connection::NetworkSetAutostart>("networkSetAutostart"),
          InstanceMethod<&Connection::NetworkGetDHCPLeases>("networkGetDHCPLeases"),
          InstanceMethod<&Connection::DomainSnapshotCreateXML>("domainSnapshotCreateXML"),
          InstanceMethod<&Connection::DomainSnapshotListNames>("domainSnapshotListNames"),
          InstanceMethod<&Connection::DomainSnapshotCurrent>("domainSnapshotCurrent"),
          InstanceMethod<&Connection::DomainSnapshotGetParent>("domainSnapshotGetParent"),
          InstanceMethod<&Connection::DomainSnapshotGetXMLDesc>("domainSnapshotGetXMLDesc"),
          InstanceMethod<&Connection::DomainSnapshotRevert>("domainSnapshotRevert"),
          InstanceMethod<&Connection::DomainSnapshotDelete>("domainSnapshotDelete"),
          InstanceMethod<&Connection::DomainOpenConsole>("domainOpenConsole"),
          InstanceMethod<&Connection::ConsoleWrite>("consoleWrite"),
          InstanceMethod<&Connection::ConsoleClose>("consoleClose"),
      });
}

Connection::Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "new Connection(listener): listener must be a function");
  }
  auto session = std::make_unique<Session>(EventSink::Create(env, info[0].As<Napi::Function>()));
  worker_ = Worker::Start(env, std::move(session));
}

Connection::~Connection() {
  // Collected without close(): close on the worker and let its thread end on
  // its own; a finalizer must not wait for a possibly hung host.
  if (!closed_) {
    Work close = [](Session& session) -> Reply {
      CloseSession(session);
      return nullptr;
    };
    close.barrier = true;
    worker_->SubmitDetached(std::move(close));
    worker_->StopAfterQueue();
  }
  worker_->Detach();
}

Napi::Value Connection::Guard(const Napi::CallbackInfo& info,
                              const std::function<Napi::Value()>& start) {
  try {
    return start();
  } catch (const Napi::Error& error) {
    auto deferred = Napi::Promise::Deferred::New(info.Env());
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
}

Napi::Value Connection::Submit(Napi::Env env, Work work) {
  if (closed_) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(ToJsError(env, MakeError(VIR_ERR_INVALID_CONN, "connection is closed")));
    return deferred.Promise();
  }
  return worker_->Submit(env, std::move(work));
}

// open(uri, { readOnly?, username?, password? }) -> Promise<void>
Napi::Value Connection::Open(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uri = StringArg(info, 0, "uri");
    Napi::Object options = OptionsArg(info, 1);
    bool readOnly = BoolOption(options, "readOnly");
    Credentials credentials{StringOption(options, "username"), StringOption(options, "password")};
    if (opened_) {
      throw Napi::Error::New(info.Env(), "open() was already called on this connection");
    }
    opened_ = true;
    return Submit(info.Env(), [uri, readOnly, credentials](Session& session) -> Reply {
      OpenSession(session, uri, readOnly, credentials);
      return nullptr;
    });
  });
}

// close() -> Promise<void>. Calls queued before it still run; calls made after
// it reject. Resolves once libvirt closed the connection and the worker
// thread has ended. A migration or a volume transfer in flight goes on, on a
// libvirt connection of its own (side-thread.h).
Napi::Value Connection::Close(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Work close = [worker = worker_](Session& session) -> Reply {
      CloseSession(session);
      // Joined from the reply, on the JavaScript thread: by then the worker
      // has delivered its last job and is only returning.
      return [worker](Napi::Env env) -> Napi::Value {
        worker->Join();
        return env.Undefined();
      };
    };
    // After the calls made before it, side jobs on a domain included.
    close.barrier = true;
    Napi::Value promise = Submit(info.Env(), std::move(close));
    if (!closed_) {
      closed_ = true;
      worker_->StopAfterQueue();
    }
    return promise;
  });
}

Napi::Value Connection::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), closed_);
}

}  // namespace virtfleet
