#include "worker.h"

#include <exception>
#include <string>

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

void Worker::Run() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job->reply = job->work(*session_);
    } catch (const LibvirtError& error) {
      job->error = error;
    } catch (const std::exception& error) {
      job->error = MakeError(VIR_ERR_INTERNAL_ERROR, error.what());
    }
    // Free the work's captures here rather than on the JavaScript thread.
    job->work = nullptr;
    // The queue is unbounded, so this never waits. It fails only while the
    // environment shuts down; the job is then dropped (unique_ptr frees it).
    std::lock_guard<std::mutex> lock(guard_->mutex);
    if (!guard_->finalized && tsfn_.BlockingCall(job.get()) == napi_ok) job.release();
  }
  // The queue is drained; a connection still open here (its JavaScript object
  // was collected without close()) is closed rather than leaked.
  CloseSession(*session_);
  std::lock_guard<std::mutex> lock(guard_->mutex);
  if (!guard_->finalized) tsfn_.Release();
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
