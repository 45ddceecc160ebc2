// Long calls (volume uploads and downloads) on a thread of their own, so that
// the connection's worker keeps answering other calls meanwhile. The same
// scheme as migration (migration.cc): on the connection's worker, take a
// reference on the connection; back on the JavaScript thread, start a one-job
// Worker whose session owns that reference and drops it when the job is done.
#pragma once

#include <libvirt/libvirt.h>

#include <memory>
#include <utility>

#include "errors.h"
#include "session.h"
#include "worker.h"

namespace virtfleet {

// Work for Connection::Submit. `op(conn)` runs on the side thread and returns
// the Reply that settles the promise.
template <typename Op>
Work OnSideThread(Op op) {
  return [op = std::move(op)](Session& session) -> Reply {
    virConnectPtr conn = RequireConnection(session);
    if (virConnectRef(conn) < 0) ThrowLastError("virConnectRef");
    return [conn, op](Napi::Env env) -> Napi::Value {
      // No events on the side session; CloseSession drops the reference.
      auto side = std::make_unique<Session>(nullptr);
      side->conn = conn;
      std::shared_ptr<Worker> worker = Worker::Start(env, std::move(side));
      Napi::Promise promise =
          worker->Submit(env, [op](Session& s) -> Reply { return op(RequireConnection(s)); });
      worker->StopAfterQueue();
      // The thread ends on its own once the job has run.
      worker->Detach();
      return promise;
    };
  };
}

}  // namespace virtfleet
