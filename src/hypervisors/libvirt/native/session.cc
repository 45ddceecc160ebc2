#include "session.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "console.h"
#include "errors.h"
#include "events.h"

namespace virtfleet {

// Answers libvirt's credential requests from the caller's Credentials. Runs on
// the worker thread, inside virConnectOpenAuth.
static int AnswerCredentials(virConnectCredentialPtr creds, unsigned int count, void* data) {
  const Credentials& credentials = *static_cast<const Credentials*>(data);
  for (unsigned int i = 0; i < count; i++) {
    virConnectCredentialPtr cred = &creds[i];
    const char* answer = nullptr;
    switch (cred->type) {
      case VIR_CRED_AUTHNAME:
      case VIR_CRED_USERNAME:
        if (credentials.username) {
          answer = credentials.username->c_str();
        } else if (cred->defresult != nullptr) {
          answer = cred->defresult;  // e.g. the user in the URI
        }
        break;
      case VIR_CRED_PASSPHRASE:
      case VIR_CRED_NOECHOPROMPT:
        if (credentials.password) answer = credentials.password->c_str();
        break;
      default:
        break;  // anything else (host key questions, realms) is refused
    }
    if (answer == nullptr) return -1;  // libvirt fails the open: auth failed
    // libvirt frees result with free().
    cred->result = strdup(answer);
    if (cred->result == nullptr) return -1;
    cred->resultlen = static_cast<unsigned int>(std::strlen(answer));
  }
  return 0;
}

static void Wipe(std::optional<std::string>& secret) {
  if (!secret) return;
  // Best effort: do not leave the password lying in freed memory.
  volatile char* p = secret->data();
  for (std::size_t i = 0; i < secret->size(); i++) p[i] = 0;
  secret.reset();
}

static virConnectPtr Connect(const std::string& uri, bool readOnly,
                             const Credentials& credentials) {
  int credTypes[] = {VIR_CRED_AUTHNAME, VIR_CRED_USERNAME, VIR_CRED_PASSPHRASE,
                     VIR_CRED_NOECHOPROMPT};
  // AnswerCredentials only reads them.
  virConnectAuth auth = {credTypes, sizeof(credTypes) / sizeof(credTypes[0]),
                         AnswerCredentials, const_cast<Credentials*>(&credentials)};
  virConnectPtr conn =
      virConnectOpenAuth(uri.c_str(), &auth, readOnly ? VIR_CONNECT_RO : 0);
  if (conn == nullptr) ThrowLastError("virConnectOpenAuth");
  return conn;
}

static void CloseQuietly(virConnectPtr conn) {
  if (virConnectClose(conn) < 0) virResetLastError();
}

void OpenSession(Session& session, const std::string& uri, bool readOnly,
                 Credentials credentials) {
  if (session.conn != nullptr) {
    throw MakeError(VIR_ERR_OPERATION_INVALID, "connection is already open");
  }
  try {
    session.conn = Connect(uri, readOnly, credentials);
    SubscribeEvents(session);
    session.sides = SideConnections::For(session.conn, uri, readOnly, credentials);
  } catch (...) {
    Wipe(credentials.password);
    CloseSession(session);
    throw;
  }
  Wipe(credentials.password);
}

virConnectPtr RequireConnection(Session& session) {
  if (session.conn == nullptr) {
    throw MakeError(VIR_ERR_INVALID_CONN, "connection is not open");
  }
  return session.conn;
}

void CloseSession(Session& session) {
  if (session.sides) {
    session.sides->Close();
    session.sides.reset();
  }
  if (session.conn == nullptr) return;
  // Streams hold a reference on the connection and their own event callbacks.
  CloseConsoleStreams(session);
  // Event registrations hold references on the connection: without this,
  // virConnectClose would leave it (and its socket) alive.
  UnsubscribeEvents(session);
  CloseQuietly(session.conn);
  session.conn = nullptr;
}

std::shared_ptr<SideConnections> SideConnections::For(virConnectPtr session,
                                                      const std::string& uri, bool readOnly,
                                                      const Credentials& credentials) {
  const char* type = virConnectGetType(session);
  if (type == nullptr) {
    virResetLastError();  // not known: a connection of its own is the safe side
  } else if (std::strcmp(type, "TEST") == 0) {
    return nullptr;
  }
  return std::make_shared<SideConnections>(session, uri, readOnly, credentials);
}

// A copy of the credentials, kept for the next opens and wiped with the pool:
// the caller wipes its own.
SideConnections::SideConnections(virConnectPtr session, std::string uri, bool readOnly,
                                 const Credentials& credentials)
    : session_(session), uri_(std::move(uri)), readOnly_(readOnly), credentials_(credentials) {
  virConnectRef(session_);  // cannot fail on an open connection
}

SideConnections::~SideConnections() {
  Close();
  Wipe(credentials_.password);
  CloseQuietly(session_);
}

SideConnections::Lease SideConnections::Shared() {
  if (virConnectRef(session_) < 0) ThrowLastError("virConnectRef");
  return {session_, 0, false};
}

namespace {

// An open in flight, between the thread that opens and the one that waits.
struct Opening {
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  bool abandoned = false;
  virConnectPtr conn = nullptr;
};

}  // namespace

SideConnections::Lease SideConnections::Take() {
  if (virConnectIsAlive(session_) != 1) return Shared();
  std::optional<Lease> found;
  std::vector<Lease> dead;
  std::optional<std::pair<int, unsigned int>> keepAlive;
  unsigned generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!found && !idle_.empty()) {
      Lease lease = idle_.back();
      idle_.pop_back();
      // One closed by its keepalive while idle (the host went away) is dropped.
      if (virConnectIsAlive(lease.conn) == 1) {
        found = lease;
      } else {
        dead.push_back(lease);
      }
    }
    keepAlive = keepAlive_;
    generation = generation_;
  }
  for (Lease& lease : dead) CloseQuietly(lease.conn);
  if (found) return *found;

  // Also after Close(): a migration made just before close() still runs, as
  // it did on the session's connection; Give closes this one afterwards.
  // An open that hangs keeps its thread (and this pool) until it returns.
  auto opening = std::make_shared<Opening>();
  std::thread([self = shared_from_this(), opening, keepAlive] {
    virConnectPtr conn = nullptr;
    try {
      conn = Connect(self->uri_, self->readOnly_, self->credentials_);
      if (keepAlive && virConnectSetKeepAlive(conn, keepAlive->first, keepAlive->second) < 0) {
        ThrowLastError("virConnectSetKeepAlive");
      }
    } catch (const LibvirtError&) {
      if (conn != nullptr) CloseQuietly(conn);
      conn = nullptr;  // the session's connection will do
    }
    std::lock_guard<std::mutex> lock(opening->mutex);
    if (opening->abandoned) {
      if (conn != nullptr) CloseQuietly(conn);
      return;
    }
    opening->conn = conn;
    opening->finished = true;
    opening->done.notify_one();
  }).detach();

  std::unique_lock<std::mutex> lock(opening->mutex);
  // Polled: libvirt takes one close callback per connection, and events.cc
  // has it. An open takes milliseconds; the poll matters only when it hangs.
  while (!opening->done.wait_for(lock, std::chrono::milliseconds(200),
                                 [&] { return opening->finished; })) {
    if (virConnectIsAlive(session_) != 1) {
      opening->abandoned = true;
      return Shared();
    }
  }
  if (opening->conn == nullptr) return Shared();
  return {opening->conn, generation, true};
}

void SideConnections::Give(Lease lease) {
  // A few idle connections cover a burst of starts; each more would hold a
  // client on the daemon (and its keepalive) for nothing.
  constexpr std::size_t kMaxIdle = 4;
  if (lease.own) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!closed_ && lease.generation == generation_ && idle_.size() < kMaxIdle &&
        virConnectIsAlive(lease.conn) == 1) {
      idle_.push_back(lease);
      return;
    }
  }
  CloseQuietly(lease.conn);  // or drops the reference on the session's
}

void SideConnections::SetKeepAlive(int interval, unsigned int count) {
  std::vector<Lease> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    keepAlive_ = std::make_pair(interval, count);
    generation_++;
    idle.swap(idle_);
  }
  for (Lease& lease : idle) CloseQuietly(lease.conn);
}

void SideConnections::Close() {
  std::vector<Lease> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    idle.swap(idle_);
  }
  for (Lease& lease : idle) CloseQuietly(lease.conn);
}

}  // namespace virtfleet
