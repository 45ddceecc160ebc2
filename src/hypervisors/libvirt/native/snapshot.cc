// Domain snapshots, named by the domain's UUID and the snapshot's name: each
// job looks both up on the worker, acts, and frees the handles
// (virDomainSnapshotFree).
#include <libvirt/libvirt.h>

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "named-object.h"
#include "side-thread.h"

namespace virtfleet {

namespace {

SnapshotHandle LookupSnapshot(virDomainPtr dom, const std::string& name) {
  SnapshotHandle snap(virDomainSnapshotLookupByName(dom, name.c_str(), 0));
  if (!snap) ThrowLastError("virDomainSnapshotLookupByName");
  return snap;
}

std::string SnapshotName(virDomainSnapshotPtr snap) {
  const char* name = virDomainSnapshotGetName(snap);
  if (name == nullptr) ThrowLastError("virDomainSnapshotGetName");
  return name;
}

Reply OptionalStringReply(std::optional<std::string> text) {
  return [text = std::move(text)](Napi::Env env) -> Napi::Value {
    return text ? Napi::String::New(env, *text) : env.Null();
  };
}

}  // namespace

// domainSnapshotCreateXML(uuid, xml, { redefine?, current?, noMetadata?,
//   halt?, diskOnly?, reuseExternal?, quiesce?, atomic?, live?, validate? })
//   -> Promise<string>: the new snapshot's name.
Napi::Value Connection::DomainSnapshotCreateXML(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string xml = StringArg(info, 1, "xml");
    Napi::Object options = OptionsArg(info, 2);
    unsigned int flags = 0;
    if (BoolOption(options, "redefine")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE;
    if (BoolOption(options, "current")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT;
    if (BoolOption(options, "noMetadata")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA;
    if (BoolOption(options, "halt")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_HALT;
    if (BoolOption(options, "diskOnly")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY;
    if (BoolOption(options, "reuseExternal")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT;
    if (BoolOption(options, "quiesce")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
    if (BoolOption(options, "atomic")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
    if (BoolOption(options, "live")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_LIVE;
    if (BoolOption(options, "validate")) flags |= VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE;
    // A side job (side-thread.h): a snapshot with memory takes a second or more, and the
    // captures of a group's VMs on one host must run side by side, not one after the other
    // on the connection's queue, for the group's pause window to stay short.
    return Submit(info.Env(), Beside(On<Domain>(uuid, [xml, flags](virDomainPtr dom) -> Reply {
                    SnapshotHandle snap(virDomainSnapshotCreateXML(dom, xml.c_str(), flags));
                    if (!snap) ThrowLastError("virDomainSnapshotCreateXML");
                    return StringReply(SnapshotName(snap.get()));
                  })));
  });
}

// domainSnapshotListNames(uuid, { roots?, topological? }) -> Promise<string[]>
Napi::Value Connection::DomainSnapshotListNames(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    Napi::Object options = OptionsArg(info, 1);
    unsigned int flags = 0;
    if (BoolOption(options, "roots")) flags |= VIR_DOMAIN_SNAPSHOT_LIST_ROOTS;
    if (BoolOption(options, "topological")) flags |= VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL;
    return Submit(info.Env(), On<Domain>(uuid, [flags](virDomainPtr dom) -> Reply {
                    virDomainSnapshotPtr* raw = nullptr;
                    int count = Check(LIBVIRT_CALL(virDomainListAllSnapshots), dom, &raw, flags);
                    std::vector<SnapshotHandle> snaps = TakeList<SnapshotHandle>(raw, count);
                    std::vector<std::string> names;
                    for (SnapshotHandle& snap : snaps) names.push_back(SnapshotName(snap.get()));
                    return [names = std::move(names)](Napi::Env env) -> Napi::Value {
                      Napi::Array list = Napi::Array::New(env, names.size());
                      for (std::size_t i = 0; i < names.size(); i++) {
                        list.Set(static_cast<uint32_t>(i), names[i]);
                      }
                      return list;
                    };
                  }));
  });
}

// domainSnapshotCurrent(uuid) -> Promise<string | null>: the current
// snapshot's name, or null when the domain has none.
Napi::Value Connection::DomainSnapshotCurrent(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    return Submit(info.Env(), On<Domain>(uuid, [](virDomainPtr dom) -> Reply {
                    int has = virDomainHasCurrentSnapshot(dom, 0);
                    if (has < 0) ThrowLastError("virDomainHasCurrentSnapshot");
                    if (has == 0) return OptionalStringReply(std::nullopt);
                    SnapshotHandle snap(virDomainSnapshotCurrent(dom, 0));
                    if (!snap) ThrowLastError("virDomainSnapshotCurrent");
                    return OptionalStringReply(SnapshotName(snap.get()));
                  }));
  });
}

// domainSnapshotGetParent(uuid, name) -> Promise<string | null>
Napi::Value Connection::DomainSnapshotGetParent(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string name = StringArg(info, 1, "name");
    return Submit(info.Env(), On<Domain>(uuid, [name](virDomainPtr dom) -> Reply {
                    SnapshotHandle snap = LookupSnapshot(dom, name);
                    SnapshotHandle parent(virDomainSnapshotGetParent(snap.get(), 0));
                    if (!parent) {
                      LibvirtError error = TakeLastError("virDomainSnapshotGetParent");
                      if (error.code == VIR_ERR_NO_DOMAIN_SNAPSHOT) {
                        return OptionalStringReply(std::nullopt);
                      }
                      throw error;
                    }
                    return OptionalStringReply(SnapshotName(parent.get()));
                  }));
  });
}

// domainSnapshotGetXMLDesc(uuid, name, { secure? }) -> Promise<string>
Napi::Value Connection::DomainSnapshotGetXMLDesc(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string name = StringArg(info, 1, "name");
    unsigned int flags = BoolOption(OptionsArg(info, 2), "secure") ? VIR_DOMAIN_XML_SECURE : 0;
    return Submit(info.Env(), On<Domain>(uuid, [name, flags](virDomainPtr dom) -> Reply {
                    SnapshotHandle snap = LookupSnapshot(dom, name);
                    CString xml(virDomainSnapshotGetXMLDesc(snap.get(), flags));
                    if (!xml) ThrowLastError("virDomainSnapshotGetXMLDesc");
                    return StringReply(xml.get());
                  }));
  });
}

// domainSnapshotRevert(uuid, name, { running?, paused?, force?, resetNvram? })
Napi::Value Connection::DomainSnapshotRevert(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string name = StringArg(info, 1, "name");
    Napi::Object options = OptionsArg(info, 2);
    unsigned int flags = 0;
    if (BoolOption(options, "running")) flags |= VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING;
    if (BoolOption(options, "paused")) flags |= VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED;
    if (BoolOption(options, "force")) flags |= VIR_DOMAIN_SNAPSHOT_REVERT_FORCE;
    if (BoolOption(options, "resetNvram")) flags |= VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM;
    // A side job, as the create: the reverts of a group's VMs on one host run side by side.
    return Submit(info.Env(), Beside(On<Domain>(uuid, [name, flags](virDomainPtr dom) -> Reply {
                    SnapshotHandle snap = LookupSnapshot(dom, name);
                    if (virDomainRevertToSnapshot(snap.get(), flags) < 0) {
                      ThrowLastError("virDomainRevertToSnapshot");
                    }
                    return nullptr;
                  })));
  });
}

// domainSnapshotDelete(uuid, name, { children?, childrenOnly?, metadataOnly? })
Napi::Value Connection::DomainSnapshotDelete(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::string name = StringArg(info, 1, "name");
    Napi::Object options = OptionsArg(info, 2);
    unsigned int flags = 0;
    if (BoolOption(options, "children")) flags |= VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN;
    if (BoolOption(options, "childrenOnly")) flags |= VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY;
    if (BoolOption(options, "metadataOnly")) flags |= VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY;
    return Submit(info.Env(), On<Domain>(uuid, [name, flags](virDomainPtr dom) -> Reply {
                    SnapshotHandle snap = LookupSnapshot(dom, name);
                    if (virDomainSnapshotDelete(snap.get(), flags) < 0) {
                      ThrowLastError("virDomainSnapshotDelete");
                    }
                    return nullptr;
                  }));
  });
}

}  // namespace virtfleet
