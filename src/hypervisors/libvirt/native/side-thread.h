// Long calls on a thread of their own: side jobs (worker.h), so that the
// connection's worker keeps answering other calls meanwhile. Domain start and
// stop (domain.cc), migrations (migration.cc), volume uploads and downloads
// (storage.cc), snapshot create and revert (snapshot.cc), pause and resume (domain.cc). Each runs on a libvirt connection of its own (session.h; on
// the test driver, with a reference of its own on the session's): close()
// does not cut it off.
#pragma once

#include <libvirt/libvirt.h>

#include <utility>

#include "errors.h"
#include "session.h"
#include "worker.h"

namespace virtfleet {

// `work` as a side job. Built by On<K> (named-object.h) it keeps its key, so
// the calls on the same object made after it wait for it; close() waits for
// it too. Others do not.
inline Work Beside(Work work) {
  work.side = true;
  return work;
}

// A side job without a key: `op(conn)` runs on the side thread and returns
// the Reply that settles the promise. Nothing waits for it, close() neither:
// a migration's job stats and abort must answer while it runs.
template <typename Op>
Work OnSideThread(Op op) {
  return Beside([op = std::move(op)](Session& s) -> Reply { return op(RequireConnection(s)); });
}

}  // namespace virtfleet
