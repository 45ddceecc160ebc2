// libvirt errors: captured as plain data on the thread that made the failing
// call (libvirt keeps the last error per thread), then turned into a JavaScript
// LibvirtError on the JavaScript thread.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <napi.h>

#include <string>

namespace virtfleet {

struct LibvirtError {
  int code;    // virErrorNumber
  int domain;  // virErrorDomain
  int level;   // virErrorLevel
  std::string message;
};

// Reads and clears the calling thread's last libvirt error. `what` names the
// call, for the rare failure that leaves no error behind.
LibvirtError TakeLastError(const char* what);

// Throws the calling thread's last libvirt error as a C++ exception; used on
// worker threads right after a libvirt call reports failure.
[[noreturn]] void ThrowLastError(const char* what);

// An error made by the binding itself, in libvirt's terms (code and domain), so
// that callers handle one error shape.
LibvirtError MakeError(int code, const std::string& message);

// Installs a handler that drops errors instead of printing them to stderr:
// libvirt's default handler prints every error, even those we report.
void SilenceDefaultErrorHandler();

// The JavaScript class errors are built with (index.ts registers its
// LibvirtError subclass of Error); without one, a plain Error is used.
void SetErrorClass(Napi::Env env, Napi::Function errorClass);
Napi::Value ToJsError(Napi::Env env, const LibvirtError& error);

}  // namespace virtfleet
