// Console streams (virDomainOpenConsole): a non-blocking virStream whose
// output libvirt's event-loop thread reads as it arrives and posts to
// JavaScript through a thread-safe function. JavaScript names an open
// stream by a number that is valid on its connection only; the stream
// itself stays in the connection's Session (worker thread).
#pragma once

#include <libvirt/libvirt.h>

#include <atomic>
#include <memory>

#include "events.h"
#include "session.h"

namespace virtfleet {

struct ConsoleStream {
  // Owned by the worker thread: written, finished and freed only there.
  virStreamPtr st = nullptr;
  bool callbackRegistered = false;
  // Receives { type: 'data', data } and then one { type: 'end' } or
  // { type: 'error', error }. Any thread.
  std::shared_ptr<EventSink> sink;
  // Set once the stream has ended (EOF, error, or closed by the caller):
  // the event-loop callback stops reading and posting.
  std::atomic<bool> ended{false};
  // Ended by EOF (finish the stream) rather than by an error or the caller (abort it).
  std::atomic<bool> eof{false};
};

// Worker thread. Removes the event callback, finishes or aborts, frees the
// stream. Never throws.
void CloseConsoleStream(ConsoleStream& stream);
// Worker thread. Closes every stream still open on the session.
void CloseConsoleStreams(Session& session);

}  // namespace virtfleet
