// Console streams. virDomainOpenConsole connects a non-blocking virStream to
// the domain's serial console; a callback on libvirt's event-loop thread
// (virStreamEventAddCallback) reads whatever has arrived and posts it, as
// Buffers, to the JavaScript listener through a thread-safe function.
// Writes and the close run on the connection's worker. JavaScript knows a
// stream by a number; the stream lives in the Session, so closing the
// connection closes its streams too.
#include "console.h"

#include <libvirt/libvirt.h>

#include <chrono>
#include <string>
#include <thread>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "named-object.h"

namespace virtfleet {

namespace {

constexpr std::size_t kChunk = 64 * 1024;
// Reads per callback before yielding the loop to other connections; the
// callback is called again while data remains.
constexpr int kReadsPerEvent = 16;
// How long a write waits for room in a stream that would block.
constexpr auto kWriteTimeout = std::chrono::seconds(30);

std::shared_ptr<ConsoleStream>& StreamOf(void* opaque) {
  return *static_cast<std::shared_ptr<ConsoleStream>*>(opaque);
}

void FreeStreamRef(void* opaque) { delete static_cast<std::shared_ptr<ConsoleStream>*>(opaque); }

// Event-loop thread. The stream has ended: stop the callback (allowed from
// inside it; libvirt frees our reference once the callback has returned)
// and tell JavaScript. The worker finishes and frees the stream on close.
void End(ConsoleStream& s, virStreamPtr st, std::optional<LibvirtError> error) {
  if (s.ended.exchange(true)) return;
  s.eof = !error;
  if (virStreamEventRemoveCallback(st) < 0) virResetLastError();
  s.sink->Emit([error](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    if (error) {
      out.Set("type", "error");
      out.Set("error", ToJsError(env, *error));
    } else {
      out.Set("type", "end");
    }
    return out;
  });
}

// Event-loop thread: libvirt's callback for the stream.
void OnConsoleEvent(virStreamPtr st, int events, void* opaque) {
  std::shared_ptr<ConsoleStream> s = StreamOf(opaque);
  if (s->ended) return;
  bool drained = false;
  if (events & (VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_HANGUP)) {
    for (int i = 0; i < kReadsPerEvent; i++) {
      std::string chunk(kChunk, '\0');
      int n = virStreamRecv(st, chunk.data(), chunk.size());
      if (n > 0) {
        chunk.resize(static_cast<std::size_t>(n));
        s->sink->Emit([chunk = std::move(chunk)](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("type", "data");
          out.Set("data", Napi::Buffer<char>::Copy(env, chunk.data(), chunk.size()));
          return out;
        });
        continue;
      }
      if (n == -2) {  // nothing more for now
        drained = true;
        break;
      }
      if (n == 0) {
        End(*s, st, std::nullopt);
      } else {
        End(*s, st, TakeLastError("virStreamRecv"));
      }
      return;
    }
  }
  if (events & VIR_STREAM_EVENT_ERROR) {
    End(*s, st, MakeError(VIR_ERR_RPC, "console stream failed"));
  } else if ((events & VIR_STREAM_EVENT_HANGUP) && drained) {
    End(*s, st, std::nullopt);
  }
}

std::shared_ptr<ConsoleStream> FindStream(Session& session, uint32_t id) {
  RequireConnection(session);
  auto it = session.consoles.find(id);
  if (it == session.consoles.end() || it->second->st == nullptr) {
    throw MakeError(VIR_ERR_INVALID_STREAM, "console stream is closed");
  }
  return it->second;
}

}  // namespace

void CloseConsoleStream(ConsoleStream& s) {
  if (s.st == nullptr) return;
  s.ended = true;
  if (s.callbackRegistered) {
    // Fails harmlessly when the callback already removed itself (end of stream).
    if (virStreamEventRemoveCallback(s.st) < 0) virResetLastError();
    s.callbackRegistered = false;
  }
  if ((s.eof ? virStreamFinish(s.st) : virStreamAbort(s.st)) < 0) virResetLastError();
  virStreamFree(s.st);
  s.st = nullptr;
}

void CloseConsoleStreams(Session& session) {
  for (auto& [id, stream] : session.consoles) CloseConsoleStream(*stream);
  session.consoles.clear();
}

// domainOpenConsole(uuid, devName | null, { force?, safe? }, listener)
//   -> Promise<number>: the stream's id on this connection. The listener
// receives { type: 'data', data: Buffer }…, then { type: 'end' } or
// { type: 'error', error }; it may be called before the promise resolves.
Napi::Value Connection::DomainOpenConsole(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string uuid = StringArg(info, 0, "uuid");
    std::optional<std::string> dev = OptionalStringArg(info, 1, "devName");
    Napi::Object options = OptionsArg(info, 2);
    unsigned int flags = 0;
    if (BoolOption(options, "force")) flags |= VIR_DOMAIN_CONSOLE_FORCE;
    if (BoolOption(options, "safe")) flags |= VIR_DOMAIN_CONSOLE_SAFE;
    if (info.Length() < 4 || !info[3].IsFunction()) {
      throw Napi::TypeError::New(info.Env(), "listener must be a function");
    }
    std::shared_ptr<EventSink> sink = EventSink::Create(info.Env(), info[3].As<Napi::Function>());
    return Submit(info.Env(), [uuid, dev, flags, sink](Session& session) -> Reply {
      virConnectPtr conn = RequireConnection(session);
      DomainHandle dom = Lookup<Domain>(conn, uuid);
      StreamHandle st(virStreamNew(conn, VIR_STREAM_NONBLOCK));
      if (!st) ThrowLastError("virStreamNew");
      if (virDomainOpenConsole(dom.get(), dev ? dev->c_str() : nullptr, st.get(), flags) < 0) {
        ThrowLastError("virDomainOpenConsole");
      }
      auto stream = std::make_shared<ConsoleStream>();
      stream->sink = sink;
      auto* opaque = new std::shared_ptr<ConsoleStream>(stream);
      int events = VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP;
      if (virStreamEventAddCallback(st.get(), events, OnConsoleEvent, opaque, FreeStreamRef) < 0) {
        delete opaque;
        LibvirtError error = TakeLastError("virStreamEventAddCallback");
        if (virStreamAbort(st.get()) < 0) virResetLastError();
        throw error;
      }
      stream->callbackRegistered = true;
      stream->st = st.release();
      uint32_t id = session.nextConsoleId++;
      session.consoles[id] = stream;
      return [id](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, id); };
    });
  });
}

// consoleWrite(id, data: Buffer | string) -> Promise<number>: sends it all
// (a stream that would block is retried for up to 30 s).
Napi::Value Connection::ConsoleWrite(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    uint32_t id = Uint32Arg(info, 0, "id");
    std::string data;
    if (info.Length() > 1 && info[1].IsBuffer()) {
      auto buffer = info[1].As<Napi::Buffer<char>>();
      data.assign(buffer.Data(), buffer.Length());
    } else if (info.Length() > 1 && info[1].IsString()) {
      data = info[1].As<Napi::String>().Utf8Value();
    } else {
      throw Napi::TypeError::New(info.Env(), "data must be a Buffer or a string");
    }
    return Submit(info.Env(), [id, data](Session& session) -> Reply {
      std::shared_ptr<ConsoleStream> s = FindStream(session, id);
      auto deadline = std::chrono::steady_clock::now() + kWriteTimeout;
      std::size_t sent = 0;
      while (sent < data.size()) {
        int n = virStreamSend(s->st, data.data() + sent, data.size() - sent);
        if (n >= 0) {
          sent += static_cast<std::size_t>(n);
        } else if (n == -2) {
          if (std::chrono::steady_clock::now() > deadline) {
            throw MakeError(VIR_ERR_OPERATION_TIMEOUT, "console stream accepts no data");
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        } else {
          ThrowLastError("virStreamSend");
        }
      }
      double bytes = static_cast<double>(sent);
      return [bytes](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, bytes); };
    });
  });
}

// consoleClose(id) -> Promise<void>: stops reading, finishes (after its end)
// or aborts the stream and frees it. Closing a closed stream resolves.
Napi::Value Connection::ConsoleClose(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    uint32_t id = Uint32Arg(info, 0, "id");
    return Submit(info.Env(), [id](Session& session) -> Reply {
      auto it = session.consoles.find(id);
      if (it == session.consoles.end()) return nullptr;
      std::shared_ptr<ConsoleStream> s = std::move(it->second);
      session.consoles.erase(it);
      CloseConsoleStream(*s);
      return nullptr;
    });
  });
}

}  // namespace virtfleet
