// libvirt's typed parameters (virTypedParameter): copied to plain data on the
// worker thread, turned into JavaScript objects on the JavaScript thread, and
// built for calls that take them (migration).
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace virtfleet {

// Numbers become doubles: exact up to 2^53 (byte counts to 8 PiB).
using ParamValue = std::variant<double, bool, std::string>;
using Params = std::vector<std::pair<std::string, ParamValue>>;

Params CopyParams(const virTypedParameter* params, int count);
// { field: value } with libvirt's field names ("time_elapsed", "cpu.time"…).
Napi::Object ParamsToJs(Napi::Env env, const Params& params);
// The number stored under `field`, if any.
std::optional<double> FindNumber(const Params& params, const std::string& field);

// Owns a list built with virTypedParamsAdd*; throws LibvirtError on failure.
class ParamsBuilder {
 public:
  ParamsBuilder() = default;
  ~ParamsBuilder() { virTypedParamsFree(params_, count_); }
  ParamsBuilder(const ParamsBuilder&) = delete;
  ParamsBuilder& operator=(const ParamsBuilder&) = delete;

  void AddString(const char* field, const std::string& value);
  void AddULLong(const char* field, unsigned long long value);
  virTypedParameterPtr params() const { return params_; }
  int count() const { return count_; }

 private:
  virTypedParameterPtr params_ = nullptr;
  int count_ = 0;
  int max_ = 0;
};

}  // namespace virtfleet
