// Shared plumbing of the Cohort addon: tensor handles, argument readers and the error bridge.
// Every exported function goes through `guarded`, so no C++ exception ever crosses into V8:
// a c10::Error becomes a JS NativeError that names the op and the shapes and dtypes of its inputs.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

namespace cohort {

// Every External the addon hands out derives from Tagged, so a handle of the wrong kind (a generator
// where a tensor is expected) is detected instead of being reinterpreted.
struct Tagged {
  virtual ~Tagged() = default;
};
struct Holder : Tagged {
  explicit Holder(torch::Tensor x) : t(std::move(x)) {}
  torch::Tensor t;
};
struct GenHolder : Tagged {
  explicit GenHolder(at::Generator x) : g(std::move(x)) {}
  at::Generator g;
};
// The tensor holder behind a JS value, or nullptr when it is not a tensor handle.
Holder* holderOf(const Napi::Value& v);

extern std::atomic<int64_t> g_live;
extern Napi::FunctionReference* g_error_ctor;

// ---- handles ---------------------------------------------------------------------------------------
Napi::Value wrap(Napi::Env env, torch::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<torch::Tensor>& ts);
torch::Tensor& unwrap(const Napi::Value& v, const char* what = "tensor");
bool isTensor(const Napi::Value& v);
std::vector<torch::Tensor> unwrapList(const Napi::Value& v);

// ---- argument readers ------------------------------------------------------------------------------
std::vector<int64_t> intList(const Napi::Value& v, const char* what);
int64_t toInt(const Napi::Value& v, const char* what);
double toDouble(const Napi::Value& v, const char* what);
bool toBool(const Napi::Value& v);
torch::Dtype toDtype(const Napi::Value& v);
std::string dtypeName(c10::ScalarType s);
torch::Device toDevice(const Napi::Value& v);
c10::optional<at::Generator> toGenerator(const Napi::Value& v);

// A tensor-or-number argument. Numbers become 0-d tensors of the other operand's dtype when needed.
struct TensorOrScalar {
  c10::optional<torch::Tensor> t;
  c10::Scalar s;
};
TensorOrScalar tensorOrScalar(const Napi::Value& v);

// ---- errors ----------------------------------------------------------------------------------------
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
std::string describeArgs(const Napi::CallbackInfo& info);
[[noreturn]] void throwJs(const Napi::CallbackInfo& info, const char* op, const std::string& msg);

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  const char* op = static_cast<const char*>(info.Data());
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throwJs(info, op, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throwJs(info, op, e.what());
  }
}

using Registrar = void (*)(Napi::Env, Napi::Object);
void registerOps(Napi::Env env, Napi::Object exports);
void registerOptim(Napi::Env env, Napi::Object exports);
void registerModelOps(Napi::Env env, Napi::Object exports);
void registerDist(Napi::Env env, Napi::Object exports);
void registerQuantOps(Napi::Env env, Napi::Object exports);
void registerLinalgOps(Napi::Env env, Napi::Object exports);
void registerCheckpoint(Napi::Env env, Napi::Object exports);

// Int8 weight-only quantization (quant.cc): [q int8 [N, K], scale f32 [N]] of w [N, K], and x · (q·scale)ᵀ + b
// (mode 0 auto, 1 kernel, 2 torch).
std::vector<torch::Tensor> quantizeInt8Impl(const torch::Tensor& w);
torch::Tensor int8LinearImpl(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& s,
                             const c10::optional<torch::Tensor>& bias, int mode);

#define COHORT_EXPORT(exports, name, fn) \
  exports.Set(name, Napi::Function::New(env, guarded<fn>, name, const_cast<char*>(name)))

}  // namespace cohort
