// The libvirt side of one connection: the virConnectPtr and its event
// registrations. Touched only by the connection's worker thread.
#pragma once

#include <libvirt/libvirt.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace virtfleet {

class EventSink;
struct ConsoleStream;

struct Credentials {
  std::optional<std::string> username;
  std::optional<std::string> password;
};

struct Session {
  explicit Session(std::shared_ptr<EventSink> sink) : events(std::move(sink)) {}

  std::shared_ptr<EventSink> events;
  virConnectPtr conn = nullptr;
  std::vector<int> domainCallbackIds;
  // What the close callback was registered with; owned here (see events.cc).
  std::shared_ptr<EventSink>* closeCallbackOpaque = nullptr;
  // Open console streams by the id JavaScript knows them by (console.cc).
  std::map<uint32_t, std::shared_ptr<ConsoleStream>> consoles;
  uint32_t nextConsoleId = 1;
};

// Opens `uri` and subscribes to its events. Credentials are answered from
// `credentials` only: libvirt's default prompts on the terminal, which a
// controller has not got. Throws LibvirtError.
void OpenSession(Session& session, const std::string& uri, bool readOnly,
                 Credentials credentials);

// The open connection, or a thrown VIR_ERR_INVALID_CONN.
virConnectPtr RequireConnection(Session& session);

// Closes open console streams, unsubscribes and closes; a no-op when not open. Never throws: closing is
// best effort, and the handle is gone afterwards whatever libvirt said.
void CloseSession(Session& session);

}  // namespace virtfleet
