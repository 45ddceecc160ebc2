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
//
// Long calls (starting a QEMU takes seconds) are side jobs: the worker takes
// them in FIFO order like any job, but runs each on a thread of its own, on a
// libvirt connection of its own (SideConnections, session.h), and goes on with
// the next job at once. Jobs that name the same object (a domain's UUID) made
// after a side job wait for it, so the calls on one domain still run in the
// order they were made.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>

#include "errors.h"
#include "session.h"
#include "tsfn-guard.h"

namespace virtfleet {

using Reply = std::function<Napi::Value(Napi::Env)>;

struct Work {
  Work() = default;
  // Any callable Reply(Session&), so that a lambda is Work as it stands.
  template <typename F,
            typename = std::enable_if_t<std::is_invocable_r_v<Reply, F&, Session&>>>
  Work(F f) : run(std::move(f)) {}

  std::function<Reply(Session&)> run;
  // The object the job acts on, when it names one (named-object.h sets it):
  // a job waits for a side job with the same key made before it.
  std::string key;
  // Runs on a thread of its own, with a session that has only the connection
  // (no events, no consoles).
  bool side = false;
  // Runs only once no job waits and no side job with a key is in flight:
  // close, so that the calls made before it have run.
  bool barrier = false;
};

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

class Worker : public std::enable_shared_from_this<Worker> {
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
  // Under mutex_: whether the job must wait for a side job.
  bool MustWait(const Job& job) const;
  void StartSide(std::unique_ptr<Job> job);
  // Side thread: posts the job's result, then lets what waited for it go on.
  void EndSide(std::unique_ptr<Job> job);
  // Hands a job that has run to the JavaScript thread.
  void Post(std::unique_ptr<Job> job);

  std::unique_ptr<Session> session_;
  Tsfn tsfn_;
  std::shared_ptr<TsfnGuard> guard_;
  std::thread thread_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  // Jobs taken from the queue that wait for a side job, in their order.
  std::deque<std::unique_ptr<Job>> parked_;
  // Keys of the side jobs in flight.
  std::set<std::string> busy_;
  bool stopping_ = false;
};

}  // namespace virtfleet
