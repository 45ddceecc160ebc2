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
  // The thread holds its own reference: the Worker outlives Run() even when
  // the JavaScript Connection object is collected first.
  worker->thread_ = std::thread([worker] { worker->Run(); });
  return worker;
}

Worker::~Worker() {
  // Reached with a joinable thread only when the last reference goes away
  // without Join/Detach (environment teardown); never block here.
  if (thread_.joinable()) thread_.detach();
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

}  // namespace

void Worker::Run() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Stopping waits for the parked jobs too: they were queued before the stop.
      wake_.wait(lock, [this] { return !queue_.empty() || (stopping_ && parked_.empty()); });
      if (queue_.empty()) break;
      job = std::move(queue_.front());
      queue_.pop_front();
      if (MustWait(*job)) {
        parked_.push_back(std::move(job));
        continue;
      }
      if (job->work.side && !job->work.key.empty()) busy_.insert(job->work.key);
    }
    if (job->work.side) {
      StartSide(std::move(job));
      continue;
    }
    RunWork(*job, *session_);
    Post(std::move(job));
  }
  // The queue is drained; a connection still open here (its JavaScript object
  // was collected without close()) is closed rather than leaked.
  CloseSession(*session_);
  std::lock_guard<std::mutex> lock(guard_->mutex);
  if (!guard_->finalized) tsfn_.Release();
}

bool Worker::MustWait(const Job& job) const {
  if (job.work.barrier) return !parked_.empty() || !busy_.empty();
  return !job.work.key.empty() && busy_.count(job.work.key) > 0;
}

void Worker::StartSide(std::unique_ptr<Job> job) {
  auto side = std::make_unique<Session>(nullptr);
  std::shared_ptr<SideConnections> sides;
  try {
    virConnectPtr conn = RequireConnection(*session_);
    if (session_->sides) {
      // A connection of its own, taken on the side thread (session.h).
      sides = session_->sides;
    } else {
      // The test driver's: a reference of the side thread's own on the
      // session's connection, which close() may drop meanwhile.
      if (virConnectRef(conn) < 0) ThrowLastError("virConnectRef");
      side->conn = conn;
    }
  } catch (const LibvirtError& error) {
    job->error = error;
    EndSide(std::move(job));
    return;
  }
  bool held;
  {
    // The side thread posts its result itself, possibly after this thread
    // has ended and released the thread-safe function: it holds it too.
    std::lock_guard<std::mutex> lock(guard_->mutex);
    held = !guard_->finalized && tsfn_.Acquire() == napi_ok;
  }
  if (!held) {  // Node is shutting down: the result is dropped
    CloseSession(*side);
    EndSide(std::move(job));
    return;
  }
  // Owned by the thread once it runs; taken back if it cannot start.
  Job* rawJob = job.release();
  Session* rawSide = side.release();
  try {
    std::thread([self = shared_from_this(), rawJob, rawSide, sides] {
      std::unique_ptr<Job> job(rawJob);
      std::unique_ptr<Session> side(rawSide);
      SideConnections::Lease lease;
      if (sides) {
        try {
          lease = sides->Take();
          side->conn = lease.conn;
        } catch (const LibvirtError& error) {
          job->error = error;
        }
      }
      if (!job->error) RunWork(*job, *side);
      if (lease.conn != nullptr) {
        side->conn = nullptr;  // given back (kept for the next side job)
        sides->Give(lease);
      }
      CloseSession(*side);  // drops the reference, if it holds one
      self->EndSide(std::move(job));
      std::lock_guard<std::mutex> lock(self->guard_->mutex);
      if (!self->guard_->finalized) self->tsfn_.Release();
    }).detach();
  } catch (const std::system_error& error) {
    job.reset(rawJob);
    side.reset(rawSide);
    job->error = MakeError(VIR_ERR_INTERNAL_ERROR, error.what());
    CloseSession(*side);
    EndSide(std::move(job));
    std::lock_guard<std::mutex> lock(guard_->mutex);
    if (!guard_->finalized) tsfn_.Release();
  }
}

void Worker::EndSide(std::unique_ptr<Job> job) {
  std::string key = job->work.key;
  // Posted first, so that the calls that waited for it settle after it.
  Post(std::move(job));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    busy_.erase(key);
    // What waited goes back to the front in its order, ahead of later jobs;
    // the worker parks again whatever still waits for another side job.
    queue_.insert(queue_.begin(), std::make_move_iterator(parked_.begin()),
                  std::make_move_iterator(parked_.end()));
    parked_.clear();
  }
  wake_.notify_one();
}

void Worker::Post(std::unique_ptr<Job> job) {
  // Free the work's captures here rather than on the JavaScript thread.
  job->work = Work();
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void Worker::StopAfterQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
}

void Worker::Join() {
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Worker::Detach() {
  if (thread_.joinable()) thread_.detach();
}

}  // namespace virtfleet
