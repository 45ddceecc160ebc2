// The libvirt side of one connection: the virConnectPtr and its event
// registrations. Touched only by the connection's worker thread; a side job
// (worker.h) gets a session of its own with just a connection.
#pragma once

#include <libvirt/libvirt.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace virtfleet {

class EventSink;
struct ConsoleStream;

struct Credentials {
  std::optional<std::string> username;
  std::optional<std::string> password;
};

// Connections of their own for side jobs, to the same URI, kept for the next
// side job. Why not the session's connection: libvirt's RPC client (measured
// with 9.0) can leave a call unsent while another thread's call is in flight
// on the same connection, until something arrives for that other call (its
// reply: a 0.3-2 s domainCreate). The thread waiting for a reply does the
// I/O for all and is woken for a new call by g_main_loop_quit, which is lost
// when it comes before that thread is back in g_main_loop_run: calls made
// back to back meet it. Measured in plain C: a lookup + state pair beside a
// domainCreate took as long as the create, every time; on a second
// connection, milliseconds. Thread-safe.
class SideConnections : public std::enable_shared_from_this<SideConnections> {
 public:
  // None for the test driver, whose state is private to each connection:
  // its side jobs share the session's connection (no RPC there).
  static std::shared_ptr<SideConnections> For(virConnectPtr session, const std::string& uri,
                                              bool readOnly, const Credentials& credentials);
  // Takes a reference on `session`.
  SideConnections(virConnectPtr session, std::string uri, bool readOnly,
                  const Credentials& credentials);
  ~SideConnections();

  struct Lease {
    virConnectPtr conn = nullptr;
    unsigned generation = 0;
    bool own = false;  // else a reference on the session's connection
  };
  // An idle connection, else a new one (with the session's keepalive). Else
  // the session's: when that one is dead (the call fails there as it always
  // did), or a new one cannot be opened. A host that went away can hold an
  // open for ever (there is no keepalive before it returns), so the open
  // runs on a thread of its own, waited for only while the session's
  // connection lives. Throws LibvirtError.
  Lease Take();
  // Kept for the next job, or closed once Close() ran or it is dead.
  void Give(Lease lease);
  // What the session's connection was given: for the connections opened from
  // now on; the idle ones are closed.
  void SetKeepAlive(int interval, unsigned int count);
  // Closes the idle connections; those in use close when given back.
  void Close();

 private:
  Lease Shared();

  virConnectPtr const session_;
  const std::string uri_;
  const bool readOnly_;
  Credentials credentials_;
  std::mutex mutex_;
  std::vector<Lease> idle_;
  std::optional<std::pair<int, unsigned int>> keepAlive_;
  unsigned generation_ = 0;  // bumped by SetKeepAlive
  bool closed_ = false;
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
  // Set by OpenSession, except for the test driver.
  std::shared_ptr<SideConnections> sides;
};

// Opens `uri` and subscribes to its events. Credentials are answered from
// `credentials` only: libvirt's default prompts on the terminal, which a
// controller has not got. A copy stays with `sides`, which opens more
// connections later, until the session closes. Throws LibvirtError.
void OpenSession(Session& session, const std::string& uri, bool readOnly,
                 Credentials credentials);

// The open connection, or a thrown VIR_ERR_INVALID_CONN.
virConnectPtr RequireConnection(Session& session);

// Closes open console streams, unsubscribes and closes; a no-op when not open. Never throws: closing is
// best effort, and the handle is gone afterwards whatever libvirt said.
void CloseSession(Session& session);

}  // namespace virtfleet
