#include "worker.h"

#include <exception>
#include <string>
#include <system_error>

namespace virtfleet {

std::shared_ptr<Worker> Worker::Start(Napi::Env env, std::unique_ptr<Session> session) {
  std::shared_ptr<Worker> worker(new Worker());
  worker->session_ = std::move(session);
  auto* inFlight = new InFlight();
  worker->guard_ = std::make_shared<TsfnGuard>();
  // One hold per pool thread; the first thread takes this one.
  worker->tsfn_ = Tsfn::New(env, "virtfleet-libvirt-worker", 0, 1, inFlight,
                            [](Napi::Env env, std::shared_ptr<TsfnGuard>* guard, InFlight* data) {
                              TsfnGuard::Finalize(env, guard, data);
                              delete data;
                            },
                            new std::shared_ptr<TsfnGuard>(worker->guard_));
  inFlight->tsfn = static_cast<napi_threadsafe_function>(worker->tsfn_);
  // An idle connection does not keep Node running; pending calls do (Submit
  // refs, Deliver unrefs), just like an idle versus a busy socket.
  worker->tsfn_.Unref(env);
  {
    std::lock_guard<std::mutex> lock(worker->mutex_);
    worker->Spawn(false);
  }
  if (worker->members_.empty()) {
    throw Napi::Error::New(env, "cannot start the connection's worker thread");
  }
  return worker;
}

Worker::~Worker() {
  // Every pool thread holds a reference, so they have all left by now; a
  // thread object still joinable here is only let go (never block here).
  for (Member& member : members_) {
    if (member.thread.joinable()) member.thread.detach();
  }
}

namespace {

void RunWork(Job& job, Session& session) {
  try {
    job.reply = job.work.run(session);
  } catch (const LibvirtError& error) {
    job.error = error;
  } catch (const std::exception& error) {
    job.error = MakeError(VIR_ERR_INTERNAL_ERROR, error.what());
  }
}

// Pool threads that wait for work: one, as at rest; those in side jobs come on top.
constexpr std::size_t kMaxIdle = 1;

}  // namespace

void Worker::Spawn(bool acquire) {
  if (acquire) {
    std::lock_guard<std::mutex> lock(guard_->mutex);
    if (guard_->finalized || tsfn_.Acquire() != napi_ok) return;  // Node is shutting down
  }
  members_.emplace_back();
  Member* member = &members_.back();
  idle_++;
  try {
    // The thread holds its own reference: the Worker outlives it even when
    // the JavaScript Connection object is collected first.
    member->thread = std::thread([self = shared_from_this(), member] { self->Run(member); });
  } catch (const std::system_error&) {
    idle_--;
    members_.pop_back();
    std::lock_guard<std::mutex> lock(guard_->mutex);
    if (!guard_->finalized) tsfn_.Release();
  }
}

void Worker::EnsureTaker() {
  if (queue_.empty() || draining_) return;  // the running job's thread takes the next
  if (idle_ > 0) {
    wake_.notify_one();
  } else {
    Spawn(true);
  }
}

bool Worker::Finished() const {
  // Stopping waits for the parked jobs too: they were queued before the stop.
  return stopping_ && queue_.empty() && parked_.empty() && !draining_;
}

void Worker::Run(Member* self) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // Counted in idle_ here. At most kMaxIdle threads wait: one more ends
    // (after a burst of side jobs the pool goes back to one thread).
    while (!((!draining_ && !queue_.empty()) || Finished())) {
      if (idle_ > kMaxIdle) {
        idle_--;
        lock.unlock();
        Leave(self);
        return;
      }
      wake_.wait(lock);
    }
    if (queue_.empty()) break;  // Finished
    std::unique_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    if (MustWait(*job)) {
      parked_.push_back(std::move(job));
      continue;
    }
    idle_--;
    if (!job->work.side) {
      draining_ = true;
      lock.unlock();
      RunWork(*job, *session_);
      Post(std::move(job));
      lock.lock();
      draining_ = false;
      idle_++;
      continue;  // takes the next job itself, when there is one
    }
    // A side job: run here, on a connection of its own; the queue goes on
    // without this thread.
    std::string key = job->work.key;
    if (!key.empty()) busy_.insert(key);
    self->unkeyedSide = key.empty();
    std::shared_ptr<SideConnections> sides;
    std::unique_ptr<Session> side = SideSession(*job, sides);
    EnsureTaker();
    lock.unlock();
    RunSide(*job, std::move(side), std::move(sides));
    lock.lock();
    self->unkeyedSide = false;
    busy_.erase(key);
    // What waited goes back to the front in its order, ahead of later jobs;
    // whatever still waits for another side job is parked again.
    queue_.insert(queue_.begin(), std::make_move_iterator(parked_.begin()),
                  std::make_move_iterator(parked_.end()));
    parked_.clear();
    idle_++;
    // Posted under the lock, once this thread counts as free again: a call
    // that its result lets JavaScript make finds it rather than starting
    // another thread; and what waited settles after it.
    Post(std::move(job));
  }
  // Finished. The queue is drained; a connection still open here (its
  // JavaScript object was collected without close()) is closed rather than
  // leaked, by the first thread to get here.
  idle_--;
  if (!sessionEnded_) {
    sessionEnded_ = true;
    draining_ = true;  // the others wait until it is closed
    lock.unlock();
    CloseSession(*session_);
    lock.lock();
    draining_ = false;
  }
  wake_.notify_all();  // the other pool threads end too
  lock.unlock();
  Leave(self);
}

void Worker::Leave(Member* self) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Join may have taken the thread object to wait for this one.
    if (self->thread.joinable()) self->thread.detach();
    for (auto it = members_.begin(); it != members_.end(); ++it) {
      if (&*it == self) {
        members_.erase(it);
        break;
      }
    }
  }
  std::lock_guard<std::mutex> lock(guard_->mutex);
  if (!guard_->finalized) tsfn_.Release();
}

bool Worker::MustWait(const Job& job) const {
  if (job.work.barrier) return !parked_.empty() || !busy_.empty();
  return !job.work.key.empty() && busy_.count(job.work.key) > 0;
}

std::unique_ptr<Session> Worker::SideSession(Job& job, std::shared_ptr<SideConnections>& sides) {
  auto side = std::make_unique<Session>(nullptr);
  try {
    virConnectPtr conn = RequireConnection(*session_);
    if (session_->sides) {
      // A connection of its own, taken when the job runs (session.h).
      sides = session_->sides;
    } else {
      // The test driver's: a reference of the side job's own on the
      // session's connection, which close() may drop meanwhile.
      if (virConnectRef(conn) < 0) ThrowLastError("virConnectRef");
      side->conn = conn;
    }
  } catch (const LibvirtError& error) {
    job.error = error;
  }
  return side;
}

void Worker::RunSide(Job& job, std::unique_ptr<Session> side,
                     std::shared_ptr<SideConnections> sides) {
  SideConnections::Lease lease;
  if (sides && !job.error) {
    try {
      lease = sides->Take();
      side->conn = lease.conn;
    } catch (const LibvirtError& error) {
      job.error = error;
    }
  }
  if (!job.error) RunWork(job, *side);
  if (lease.conn != nullptr) {
    side->conn = nullptr;  // given back (kept for the next side job)
    sides->Give(lease);
  }
  CloseSession(*side);  // drops the reference, if it holds one
  job.work = Work();    // its captures freed here, not under the lock
}

void Worker::Post(std::unique_ptr<Job> job) {
  // Free the work's captures here rather than on the JavaScript thread.
  job->work = Work();
  // Lock order: mutex_ (when held), then the guard's.
  // The queue is unbounded, so this never waits. It fails only while the
  // environment shuts down; the job is then dropped (unique_ptr frees it).
  std::lock_guard<std::mutex> lock(guard_->mutex);
  if (!guard_->finalized && tsfn_.BlockingCall(job.get()) == napi_ok) job.release();
}

void Worker::Deliver(Napi::Env env, Napi::Function, InFlight* inFlight, Job* raw) {
  std::unique_ptr<Job> job(raw);
  if (env == nullptr || !job->deferred) return;  // teardown, or nobody waits
  if (--inFlight->count == 0) napi_unref_threadsafe_function(env, inFlight->tsfn);
  Napi::HandleScope scope(env);
  Napi::Promise::Deferred& deferred = *job->deferred;
  if (job->error) {
    deferred.Reject(ToJsError(env, *job->error));
    return;
  }
  try {
    deferred.Resolve(job->reply ? job->reply(env) : env.Undefined());
  } catch (const Napi::Error& error) {
    deferred.Reject(error.Value());
  }
}

Napi::Promise Worker::Submit(Napi::Env env, Work work) {
  auto job = std::make_unique<Job>();
  job->work = std::move(work);
  job->deferred = Napi::Promise::Deferred::New(env);
  Napi::Promise promise = job->deferred->Promise();
  if (guard_->finalized) {  // JavaScript thread, as is the finalizer: no lock needed
    job->deferred->Reject(
        ToJsError(env, MakeError(VIR_ERR_INVALID_CONN, "Node.js is shutting down")));
    return promise;
  }
  InFlight* inFlight = tsfn_.GetContext();
  if (inFlight->count++ == 0) tsfn_.Ref(env);
  Enqueue(std::move(job));
  return promise;
}

void Worker::SubmitDetached(Work work) {
  auto job = std::make_unique<Job>();
  job->work = std::move(work);
  Enqueue(std::move(job));
}

void Worker::Enqueue(std::unique_ptr<Job> job) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.push_back(std::move(job));
  EnsureTaker();
}

void Worker::StopAfterQueue() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  wake_.notify_all();
}

void Worker::Join() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Member& member : members_) {
      if (!member.thread.joinable()) continue;
      if (member.unkeyedSide) {
        member.thread.detach();  // ends after its side job, on its own
      } else {
        threads.push_back(std::move(member.thread));
      }
    }
  }
  for (std::thread& thread : threads) thread.join();
}

void Worker::Detach() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Member& member : members_) {
    if (member.thread.joinable()) member.thread.detach();
  }
}

}  // namespace virtfleet
