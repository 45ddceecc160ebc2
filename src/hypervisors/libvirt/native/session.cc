#include "session.h"

#include <cstdlib>
#include <cstring>

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

void OpenSession(Session& session, const std::string& uri, bool readOnly,
                 Credentials credentials) {
  if (session.conn != nullptr) {
    throw MakeError(VIR_ERR_OPERATION_INVALID, "connection is already open");
  }
  int credTypes[] = {VIR_CRED_AUTHNAME, VIR_CRED_USERNAME, VIR_CRED_PASSPHRASE,
                     VIR_CRED_NOECHOPROMPT};
  virConnectAuth auth = {credTypes, sizeof(credTypes) / sizeof(credTypes[0]),
                         AnswerCredentials, &credentials};
  virConnectPtr conn =
      virConnectOpenAuth(uri.c_str(), &auth, readOnly ? VIR_CONNECT_RO : 0);
  Wipe(credentials.password);
  if (conn == nullptr) ThrowLastError("virConnectOpenAuth");
  session.conn = conn;
  try {
    SubscribeEvents(session);
  } catch (...) {
    CloseSession(session);
    throw;
  }
}

virConnectPtr RequireConnection(Session& session) {
  if (session.conn == nullptr) {
    throw MakeError(VIR_ERR_INVALID_CONN, "connection is not open");
  }
  return session.conn;
}

void CloseSession(Session& session) {
  if (session.conn == nullptr) return;
  // Streams hold a reference on the connection and their own event callbacks.
  CloseConsoleStreams(session);
  // Event registrations hold references on the connection: without this,
  // virConnectClose would leave it (and its socket) alive.
  UnsubscribeEvents(session);
  if (virConnectClose(session.conn) < 0) virResetLastError();
  session.conn = nullptr;
}

}  // namespace virtfleet
