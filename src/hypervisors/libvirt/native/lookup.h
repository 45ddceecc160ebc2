// Naming a domain by UUID: each job looks the domain up on its worker thread,
// acts, and frees the handle, so no libvirt handle ever reaches JavaScript.
#pragma once

#include <libvirt/libvirt.h>

#include <string>
#include <utility>

#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "worker.h"

namespace virtfleet {

inline DomainHandle LookupByUUID(virConnectPtr conn, const std::string& uuid) {
  DomainHandle dom(virDomainLookupByUUIDString(conn, uuid.c_str()));
  if (!dom) ThrowLastError("virDomainLookupByUUIDString");
  return dom;
}

// Work that looks up the domain `uuid` and hands it to `op`.
template <typename Op>
Work OnDomain(std::string uuid, Op op) {
  return [uuid = std::move(uuid), op](Session& session) -> Reply {
    DomainHandle dom = LookupByUUID(RequireConnection(session), uuid);
    return op(dom.get());
  };
}

inline Reply IdentityReply(DomainIdentity identity) {
  return [identity = std::move(identity)](Napi::Env env) -> Napi::Value {
    return ToJs(env, identity);
  };
}

}  // namespace virtfleet
