#include "params.h"

#include "errors.h"

namespace virtfleet {

Params CopyParams(const virTypedParameter* params, int count) {
  Params out;
  out.reserve(count > 0 ? count : 0);
  for (int i = 0; i < count; i++) {
    const virTypedParameter& p = params[i];
    ParamValue value;
    switch (p.type) {
      case VIR_TYPED_PARAM_INT: value = static_cast<double>(p.value.i); break;
      case VIR_TYPED_PARAM_UINT: value = static_cast<double>(p.value.ui); break;
      case VIR_TYPED_PARAM_LLONG: value = static_cast<double>(p.value.l); break;
      case VIR_TYPED_PARAM_ULLONG: value = static_cast<double>(p.value.ul); break;
      case VIR_TYPED_PARAM_DOUBLE: value = p.value.d; break;
      case VIR_TYPED_PARAM_BOOLEAN: value = p.value.b != 0; break;
      case VIR_TYPED_PARAM_STRING: value = std::string(p.value.s ? p.value.s : ""); break;
      default: continue;  // a type newer than this build
    }
    out.emplace_back(p.field, std::move(value));
  }
  return out;
}

Napi::Object ParamsToJs(Napi::Env env, const Params& params) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [field, value] : params) {
    if (const double* d = std::get_if<double>(&value)) {
      out.Set(field, *d);
    } else if (const bool* b = std::get_if<bool>(&value)) {
      out.Set(field, *b);
    } else {
      out.Set(field, std::get<std::string>(value));
    }
  }
  return out;
}

std::optional<double> FindNumber(const Params& params, const std::string& field) {
  for (const auto& [name, value] : params) {
    if (name == field) {
      if (const double* d = std::get_if<double>(&value)) return *d;
    }
  }
  return std::nullopt;
}

void ParamsBuilder::AddString(const char* field, const std::string& value) {
  if (virTypedParamsAddString(&params_, &count_, &max_, field, value.c_str()) < 0) {
    ThrowLastError("virTypedParamsAddString");
  }
}

void ParamsBuilder::AddULLong(const char* field, unsigned long long value) {
  if (virTypedParamsAddULLong(&params_, &count_, &max_, field, value) < 0) {
    ThrowLastError("virTypedParamsAddULLong");
  }
}

}  // namespace virtfleet
