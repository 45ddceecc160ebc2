// A pool of threads per connection that takes jobs from one FIFO.
//
// Why not Napi::AsyncWorker: it runs on libuv's shared thread pool (4 threads by
// default), so a few calls stuck on an unreachable host would stall every
// other host and Node's own file I/O and DNS. Threads of its own keep a hung
// host's calls to itself.
//
// A job's work runs on a pool thread and returns a Reply: a function that
// builds the JavaScript result later, on the JavaScript thread. Work must
// capture and return plain C++ data only, never Napi values, and reports
// failure by throwing LibvirtError.
//
// Jobs run one at a time on the session's connection, in FIFO order, by
// whichever pool thread is free (at rest the pool is one thread). Long calls
// (starting a QEMU takes seconds) are side jobs: the thread that takes one
// runs it itself, on a libvirt connection of its own (SideConnections,
// session.h), and leaves the queue to another pool thread, started only when
// a job waits meanwhile. So a side job costs no thread hop when nothing else
// is asked for (the cost that halved sequential throughput when every side
// job got a new thread), and the queue still never waits behind one. Jobs
// that name the same object (a domain's UUID) made after a side job wait for
// it, so the calls on one domain still run in the order they were made.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

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

  // Starts the pool. `session` is handed over to it: from now on only the
  // pool thread running a job touches it.
  static std::shared_ptr<Worker> Start(Napi::Env env, std::unique_ptr<Session> session);
  ~Worker();

  // JavaScript thread. Queues work and returns the promise it settles.
  Napi::Promise Submit(Napi::Env env, Work work);
  // JavaScript thread (finalizers too). Queues work nobody waits for.
  void SubmitDetached(Work work);
  // No more jobs after this; the thread exits once it has run the queue.
  void StopAfterQueue();
  // Waits for the pool's threads to exit: call only after StopAfterQueue,
  // from the last job's reply (they are then past it and about to return).
  // A thread in a side job without a key (a migration) is let go instead.
  void Join();
  // Lets the threads finish on their own (finalizer path: never block there).
  void Detach();

 private:
  // One pool thread. Its std::thread is moved out by Join, or detached.
  struct Member {
    std::thread thread;
    // In a side job without a key (a migration): close() does not wait for it.
    bool unkeyedSide = false;
  };

  Worker() = default;
  void Run(Member* self);
  void Enqueue(std::unique_ptr<Job> job);
  // Under mutex_: whether the job must wait for a side job.
  bool MustWait(const Job& job) const;
  // Under mutex_: the pool is done (stopped, nothing queued or running).
  bool Finished() const;
  // Under mutex_: starts a pool thread (counted idle). `acquire`: it holds
  // the thread-safe function too (all but the first).
  void Spawn(bool acquire);
  // Under mutex_: a job waits and no thread would take it: wake or start one.
  void EnsureTaker();
  // Under mutex_, for a side job just taken: the session it runs with. Read
  // here because the next job may run on the session as soon as the lock goes.
  std::unique_ptr<Session> SideSession(Job& job, std::shared_ptr<SideConnections>& sides);
  // Runs a side job on this thread (lock not held); the caller posts it.
  void RunSide(Job& job, std::unique_ptr<Session> side, std::shared_ptr<SideConnections> sides);
  // Hands a job that has run to the JavaScript thread.
  void Post(std::unique_ptr<Job> job);
  // The end of a pool thread: lets its std::thread go, releases its hold on
  // the thread-safe function (lock not held).
  void Leave(Member* self);

  std::unique_ptr<Session> session_;
  Tsfn tsfn_;
  std::shared_ptr<TsfnGuard> guard_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::list<Member> members_;
  // Threads free to take a job (started ones included).
  std::size_t idle_ = 0;
  // A thread runs a job on the session's connection.
  bool draining_ = false;
  std::deque<std::unique_ptr<Job>> queue_;
  // Jobs taken from the queue that wait for a side job, in their order.
  std::deque<std::unique_ptr<Job>> parked_;
  // Keys of the side jobs in flight.
  std::set<std::string> busy_;
  bool stopping_ = false;
  bool sessionEnded_ = false;
};

}  // namespace virtfleet
