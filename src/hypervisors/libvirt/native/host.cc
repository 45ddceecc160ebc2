// Connection-level calls: keepalive, liveness, and facts about the host and
// the library. Each worker lambda makes one libvirt call and copies out the
// result; the reply builds the JavaScript value.
#include <libvirt/libvirt.h>

#include <string>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "named-object.h"

namespace virtfleet {

// libvirt encodes versions as major * 1,000,000 + minor * 1,000 + micro.
static Reply VersionReply(unsigned long version) {
  return [version](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("major", static_cast<double>(version / 1000000));
    out.Set("minor", static_cast<double>((version / 1000) % 1000));
    out.Set("micro", static_cast<double>(version % 1000));
    return out;
  };
}

// setKeepAlive(intervalSeconds, count) -> Promise<boolean>: false when the
// other end does not support keepalive. The close event with reason
// "keepalive" follows when interval * (count + 1) seconds pass in silence.
Napi::Value Connection::SetKeepAlive(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    int interval = Int32Arg(info, 0, "interval");
    uint32_t count = Uint32Arg(info, 1, "count");
    return Submit(info.Env(), [interval, count](Session& session) -> Reply {
      int rc = virConnectSetKeepAlive(RequireConnection(session), interval, count);
      if (rc < 0) ThrowLastError("virConnectSetKeepAlive");
      // Side jobs' connections too, so that a call there does not outlive a
      // host that went away (session.h).
      if (rc == 0 && session.sides) session.sides->SetKeepAlive(interval, count);
      return BoolReply(rc == 0);
    });
  });
}

Napi::Value Connection::IsAlive(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      return BoolReply(IsTrue(LIBVIRT_CALL(virConnectIsAlive), RequireConnection(session)));
    });
  });
}

Napi::Value Connection::GetHostname(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      CString name(virConnectGetHostname(RequireConnection(session)));
      if (!name) ThrowLastError("virConnectGetHostname");
      return StringReply(name.get());
    });
  });
}

Napi::Value Connection::GetURI(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      CString uri(virConnectGetURI(RequireConnection(session)));
      if (!uri) ThrowLastError("virConnectGetURI");
      return StringReply(uri.get());
    });
  });
}

Napi::Value Connection::GetCapabilities(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      CString xml(virConnectGetCapabilities(RequireConnection(session)));
      if (!xml) ThrowLastError("virConnectGetCapabilities");
      return StringReply(xml.get());
    });
  });
}

Napi::Value Connection::GetNodeInfo(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      virNodeInfo node;
      if (virNodeGetInfo(RequireConnection(session), &node) < 0) ThrowLastError("virNodeGetInfo");
      return [node](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        // model is a fixed char[32], not necessarily NUL-terminated when full.
        out.Set("model", std::string(node.model, strnlen(node.model, sizeof(node.model))));
        out.Set("memoryKiB", static_cast<double>(node.memory));
        out.Set("cpus", node.cpus);
        out.Set("mhz", node.mhz);
        out.Set("nodes", node.nodes);
        out.Set("sockets", node.sockets);
        out.Set("cores", node.cores);
        out.Set("threads", node.threads);
        return out;
      };
    });
  });
}

// getFreeMemory() -> Promise<number>, in bytes.
Napi::Value Connection::GetFreeMemory(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      virConnectPtr conn = RequireConnection(session);
      virResetLastError();
      unsigned long long bytes = virNodeGetFreeMemory(conn);
      // 0 is the error value, but a host could in principle have no free
      // memory: only a recorded error makes it a failure.
      if (bytes == 0 && virGetLastError() != nullptr) ThrowLastError("virNodeGetFreeMemory");
      return [bytes](Napi::Env env) -> Napi::Value {
        return Napi::Number::New(env, static_cast<double>(bytes));
      };
    });
  });
}

// getLibVersion() -> Promise<{major, minor, micro}>: the libvirt library that
// answers on the other end (the daemon's, for remote URIs).
Napi::Value Connection::GetLibVersion(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      unsigned long version = 0;
      if (virConnectGetLibVersion(RequireConnection(session), &version) < 0) {
        ThrowLastError("virConnectGetLibVersion");
      }
      return VersionReply(version);
    });
  });
}

// getVersion() -> Promise<{major, minor, micro}>: the hypervisor's version.
Napi::Value Connection::GetVersion(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      unsigned long version = 0;
      if (virConnectGetVersion(RequireConnection(session), &version) < 0) {
        ThrowLastError("virConnectGetVersion");
      }
      return VersionReply(version);
    });
  });
}

// getType() -> Promise<string>: the driver's name ("QEMU", "Xen", "TEST").
Napi::Value Connection::GetType(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    return Submit(info.Env(), [](Session& session) -> Reply {
      // A static string owned by libvirt: not freed.
      const char* type = virConnectGetType(RequireConnection(session));
      if (type == nullptr) ThrowLastError("virConnectGetType");
      return StringReply(type);
    });
  });
}

}  // namespace virtfleet
