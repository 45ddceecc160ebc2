// One worker thread per connection, with a FIFO of jobs.
//
// Why not Napi::AsyncWorker: it runs on libuv's shared thread pool (4 threads by
// default), so a few calls stuck on an unreachable host would stall every
// other host and Node's own file I/O and DNS. A thread per connection keeps a
// hung host's calls to itself.
//
// A job's work runs on the worker thread and returns a Reply: a function that
// builds the JavaScript result later, on the JavaScript thread. Work must
// capture and return plain C++ data only, never Napi values, and reports
// failure by throwing LibvirtError.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "errors.h"
#include "session.h"
#include "tsfn-guard.h"

namespace virtfleet {

using Reply = std::function<Napi::Value(Napi::Env)>;
using Work = std::function<Reply(Session&)>;

struct Job {
  Work work;
  Reply reply;
  std::optional<LibvirtError> error;
  // Absent for fire-and-forget jobs (the close queued by a finalizer).
  std::optional<Napi::Promise::Deferred> deferred;
};

// Lives on the JavaScript thread, owned by the thread-safe function: counts
// the jobs whose promise is pending, to keep Node alive only while there are.
struct InFlight {
  std::size_t count = 0;
  napi_threadsafe_function tsfn = nullptr;
};

class Worker {
 public:
  static void Deliver(Napi::Env env, Napi::Function unused, InFlight* inFlight, Job* job);
  using Tsfn = Napi::TypedThreadSafeFunction<InFlight, Job, &Worker::Deliver>;

  // Starts the thread. `session` is handed over to it: from now on only the
  // worker thread touches it.
  static std::shared_ptr<Worker> Start(Napi::Env env, std::unique_ptr<Session> session);
  ~Worker();

  // JavaScript thread. Queues work and returns the promise it settles.
  Napi::Promise Submit(Napi::Env env, Work work);
  // JavaScript thread (finalizers too). Queues work nobody waits for.
  void SubmitDetached(Work work);
  // No more jobs after this; the thread exits once it has run the queue.
  void StopAfterQueue();
  // Waits for the thread to exit: call only after StopAfterQueue, from a
  // job's reply (the thread is then past its last job and about to return).
  void Join();
  // Lets the thread finish on its own (finalizer path: never block there).
  void Detach();

 private:
  Worker() = default;
  void Run();
  void Enqueue(std::unique_ptr<Job> job);

  std::unique_ptr<Session> session_;
  Tsfn tsfn_;
  std::shared_ptr<TsfnGuard> guard_;
  std::thread thread_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
};

}  // namespace virtfleet
