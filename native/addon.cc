// Cohort native core: tensor handles over libtorch, creation, inspection, autograd and runtime settings.
// Ops live in ops.cc, optimizers in optim.cc. Shapes and dtypes cross as plain JS values; tensor data
// stays native and crosses only through toBuffer/fromBuffer.
#include "common.h"

#include <cmath>
#include <cstring>
#include <sstream>

namespace cohort {

std::atomic<int64_t> g_live{0};
Napi::FunctionReference* g_error_ctor = nullptr;

// ---- handles ---------------------------------------------------------------------------------------

static void finalizeTagged(Napi::Env, Tagged* p) {
  if (auto* h = dynamic_cast<Holder*>(p); h != nullptr && h->t.defined()) g_live--;
  delete p;
}

Napi::Value wrap(Napi::Env env, torch::Tensor t) {
  auto* h = new Holder(std::move(t));
  if (h->t.defined()) g_live++;
  return Napi::External<Tagged>::New(env, h, finalizeTagged);
}

Holder* holderOf(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  return dynamic_cast<Holder*>(v.As<Napi::External<Tagged>>().Data());
}

Napi::Value wrapList(Napi::Env env, const std::vector<torch::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) arr.Set(static_cast<uint32_t>(i), wrap(env, ts[i]));
  return arr;
}

bool isTensor(const Napi::Value& v) { return holderOf(v) != nullptr; }

torch::Tensor& unwrap(const Napi::Value& v, const char* what) {
  auto* h = holderOf(v);
  if (h == nullptr) throw ArgError(std::string("expected ") + what + " to be a tensor handle");
  if (!h->t.defined()) throw ArgError(std::string(what) + " was disposed; keep() it or move it out of tidy()");
  return h->t;
}

std::vector<torch::Tensor> unwrapList(const Napi::Value& v) {
  if (!v.IsArray()) throw ArgError("expected an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<torch::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(unwrap(arr.Get(i), "list element"));
  return out;
}

// ---- argument readers ------------------------------------------------------------------------------

std::vector<int64_t> intList(const Napi::Value& v, const char* what) {
  std::vector<int64_t> out;
  if (v.IsNumber()) {
    out.push_back(v.As<Napi::Number>().Int64Value());
    return out;
  }
  if (!v.IsArray()) throw ArgError(std::string("expected ") + what + " to be an array of integers");
  auto arr = v.As<Napi::Array>();
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    auto e = arr.Get(i);
    if (!e.IsNumber()) throw ArgError(std::string("expected ") + what + " to hold only integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d)))
      throw ArgError(std::string(what) + " holds a non-integer value");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

int64_t toInt(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw ArgError(std::string("expected ") + what + " to be an integer");
  return v.As<Napi::Number>().Int64Value();
}

double toDouble(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw ArgError(std::string("expected ") + what + " to be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool toBool(const Napi::Value& v) { return v.ToBoolean().Value(); }

torch::Dtype toDtype(const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "f32";
  if (s == "f32") return torch::kFloat32;
  if (s == "f64") return torch::kFloat64;
  if (s == "f16") return torch::kFloat16;
  if (s == "bf16") return torch::kBFloat16;
  if (s == "i64") return torch::kInt64;
  if (s == "i32") return torch::kInt32;
  if (s == "u8") return torch::kUInt8;
  if (s == "i8") return torch::kInt8;
  if (s == "bool") return torch::kBool;
  throw ArgError("unknown dtype '" + s + "' (allowed: f32, f64, f16, bf16, i64, i32, i8, u8, bool)");
}

std::string dtypeName(c10::ScalarType s) {
  switch (s) {
    case torch::kFloat32: return "f32";
    case torch::kFloat64: return "f64";
    case torch::kFloat16: return "f16";
    case torch::kBFloat16: return "bf16";
    case torch::kInt64: return "i64";
    case torch::kInt32: return "i32";
    case torch::kUInt8: return "u8";
    case torch::kInt8: return "i8";
    case torch::kBool: return "bool";
    default: return c10::toString(s);
  }
}

torch::Device toDevice(const Napi::Value& v) {
  if (!v.IsString()) return torch::Device(torch::kCPU);
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "cpu") return torch::Device(torch::kCPU);
  if (s.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw ArgError("device '" + s + "' requested but CUDA is not available in this libtorch build/machine");
    return torch::Device(s);
  }
  throw ArgError("unknown device '" + s + "' (allowed: cpu, cuda, cuda:N)");
}

c10::optional<at::Generator> toGenerator(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  auto* g = v.IsExternal() ? dynamic_cast<GenHolder*>(v.As<Napi::External<Tagged>>().Data()) : nullptr;
  if (g == nullptr) throw ArgError("expected a generator handle");
  return g->g;
}

TensorOrScalar tensorOrScalar(const Napi::Value& v) {
  TensorOrScalar r;
  if (v.IsNumber()) {
    // Integral JS numbers are integer scalars, so i64 tensors stay i64 (PyTorch's type promotion).
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::trunc(d) == d && std::fabs(d) < 9.007199254740992e15) r.s = c10::Scalar(static_cast<int64_t>(d));
    else r.s = c10::Scalar(d);
  } else if (v.IsBoolean()) {
    r.s = c10::Scalar(v.As<Napi::Boolean>().Value());
  } else {
    r.t = unwrap(v, "operand");
  }
  return r;
}

// ---- errors ----------------------------------------------------------------------------------------

static std::string describeTensor(const torch::Tensor& t) {
  std::ostringstream o;
  o << "[";
  for (int64_t i = 0; i < t.dim(); i++) o << (i ? "," : "") << t.size(i);
  o << "] " << dtypeName(t.scalar_type());
  if (!t.device().is_cpu()) o << " " << t.device();
  return o.str();
}

std::string describeArgs(const Napi::CallbackInfo& info) {
  std::ostringstream o;
  bool first = true;
  for (size_t i = 0; i < info.Length(); i++) {
    auto v = info[i];
    std::string d;
    if (auto* h = holderOf(v)) {
      d = h->t.defined() ? describeTensor(h->t) : "<disposed>";
    } else if (v.IsArray()) {
      auto arr = v.As<Napi::Array>();
      bool anyTensor = false;
      std::ostringstream l;
      l << "(";
      for (uint32_t k = 0; k < arr.Length() && k < 8; k++) {
        auto e = arr.Get(k);
        if (auto* h = holderOf(e)) {
          anyTensor = true;
          l << (k ? ", " : "") << (h->t.defined() ? describeTensor(h->t) : "<disposed>");
        }
      }
      if (arr.Length() > 8) l << ", …";
      l << ")";
      if (anyTensor) d = l.str();
    }
    if (!d.empty()) {
      o << (first ? "" : "; ") << "arg" << i << " " << d;
      first = false;
    }
  }
  return o.str();
}

[[noreturn]] void throwJs(const Napi::CallbackInfo& info, const char* op, const std::string& raw) {
  Napi::Env env = info.Env();
  // c10 messages can be long and multi-line; the first paragraph carries the reason.
  std::string msg = raw;
  auto cut = msg.find("\nException raised from");
  if (cut != std::string::npos) msg = msg.substr(0, cut);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string args = describeArgs(info);
  std::string full = std::string(op) + ": " + msg + (args.empty() ? "" : " (inputs: " + args + ")");
  if (g_error_ctor != nullptr) {
    auto err = g_error_ctor->Value().New({Napi::String::New(env, full), Napi::String::New(env, op)});
    throw Napi::Error(env, err);
  }
  throw Napi::Error::New(env, full);
}

// ---- runtime ---------------------------------------------------------------------------------------

static Napi::Value init(const Napi::CallbackInfo& info) {
  if (g_error_ctor == nullptr) g_error_ctor = new Napi::FunctionReference();
  *g_error_ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

static Napi::Value liveCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_live.load()));
}

static Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(static_cast<int>(toInt(info[0], "threads")));
  return info.Env().Undefined();
}

static Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value cudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::cuda::is_available());
}

static Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
}

static Napi::Value versionInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("torch", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                     std::to_string(TORCH_VERSION_PATCH));
  o.Set("parallel", at::get_parallel_info());
  return o;
}

static Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  double s = toDouble(info[0], "seed");
  torch::manual_seed(static_cast<uint64_t>(s));
  return info.Env().Undefined();
}

static Napi::Value newGenerator(const Napi::CallbackInfo& info) {
  auto* g = new GenHolder(at::detail::createCPUGenerator(static_cast<uint64_t>(toDouble(info[0], "seed"))));
  return Napi::External<Tagged>::New(info.Env(), g, finalizeTagged);
}

static at::Generator pickGen(const Napi::Value& v) {
  auto g = toGenerator(v);
  return g ? *g : at::detail::getDefaultCPUGenerator();
}

static Napi::Value genGetState(const Napi::CallbackInfo& info) {
  at::Generator g = pickGen(info[0]);
  std::lock_guard<std::mutex> lock(g.mutex());
  torch::Tensor st = g.get_state();
  auto buf = Napi::Buffer<uint8_t>::Copy(info.Env(), st.data_ptr<uint8_t>(), st.numel());
  return buf;
}

static Napi::Value genSetState(const Napi::CallbackInfo& info) {
  at::Generator g = pickGen(info[0]);
  if (!info[1].IsBuffer()) throw ArgError("expected the generator state as bytes");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  {
    std::lock_guard<std::mutex> lock(g.mutex());
    int64_t want = g.get_state().numel();
    if (static_cast<int64_t>(buf.Length()) != want)
      throw ArgError("generator state has " + std::to_string(buf.Length()) + " bytes, expected " + std::to_string(want) +
                     " (a state saved by getState()/getRngState())");
  }
  torch::Tensor st = torch::empty({static_cast<int64_t>(buf.Length())}, torch::kUInt8);
  std::memcpy(st.data_ptr<uint8_t>(), buf.Data(), buf.Length());
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(st);
  return info.Env().Undefined();
}

// ---- creation --------------------------------------------------------------------------------------

static torch::TensorOptions opts(const Napi::Value& dtype, const Napi::Value& device) {
  return torch::TensorOptions().dtype(toDtype(dtype)).device(toDevice(device));
}

// fromBuffer(typedArray, shape, dtype, device): copies the bytes (interpreted as dtype) into a new tensor.
static Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw ArgError("expected a typed array of data");
  auto ta = info[0].As<Napi::TypedArray>();
  auto shape = intList(info[1], "shape");
  auto dtype = toDtype(info[2]);
  int64_t numel = 1;
  for (auto s : shape) {
    if (s < 0) throw ArgError("shape has a negative size");
    numel *= s;
  }
  size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (ta.ByteLength() != need)
    throw ArgError("data has " + std::to_string(ta.ByteLength()) + " bytes but shape × dtype needs " +
                   std::to_string(need));
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (need > 0) {
    auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::memcpy(t.data_ptr(), src, need);
  }
  auto dev = toDevice(info[3]);
  if (!dev.is_cpu()) t = t.to(dev);
  return wrap(info.Env(), t);
}

// toBuffer(t): contiguous CPU copy of the bytes, as an ArrayBuffer.
static Napi::Value toBuffer(const Napi::CallbackInfo& info) {
  torch::Tensor t = unwrap(info[0]).detach();
  if (!t.device().is_cpu()) t = t.cpu();
  t = t.contiguous();
  size_t n = t.numel() * t.element_size();
  auto ab = Napi::ArrayBuffer::New(info.Env(), n);
  if (n > 0) std::memcpy(ab.Data(), t.data_ptr(), n);
  return ab;
}

static Napi::Value item(const Napi::CallbackInfo& info) {
  torch::Tensor& t = unwrap(info[0]);
  if (t.numel() != 1) throw ArgError("item() needs a tensor with exactly one element, got " + std::to_string(t.numel()));
  if (t.scalar_type() == torch::kBool) return Napi::Boolean::New(info.Env(), t.item<bool>());
  return Napi::Number::New(info.Env(), t.item<double>());
}

static Napi::Value scalarTensor(const Napi::CallbackInfo& info) {
  double v = toDouble(info[0], "value");
  return wrap(info.Env(), torch::scalar_tensor(v, opts(info[1], info[2])));
}

static Napi::Value full(const Napi::CallbackInfo& info) {
  auto shape = intList(info[0], "shape");
  double v = toDouble(info[1], "value");
  return wrap(info.Env(), torch::full(shape, v, opts(info[2], info[3])));
}

static Napi::Value arange(const Napi::CallbackInfo& info) {
  double start = toDouble(info[0], "start"), end = toDouble(info[1], "end"), step = toDouble(info[2], "step");
  return wrap(info.Env(), torch::arange(start, end, step, opts(info[3], info[4])));
}

static Napi::Value randn(const Napi::CallbackInfo& info) {
  auto shape = intList(info[0], "shape");
  auto o = opts(info[1], info[2]);
  auto g = toGenerator(info[3]);
  torch::Tensor t = g ? torch::randn(shape, *g, o.device(torch::kCPU)).to(o.device()) : torch::randn(shape, o.device(torch::kCPU)).to(o.device());
  return wrap(info.Env(), t);
}

static Napi::Value rand(const Napi::CallbackInfo& info) {
  auto shape = intList(info[0], "shape");
  auto o = opts(info[1], info[2]);
  auto g = toGenerator(info[3]);
  torch::Tensor t = g ? torch::rand(shape, *g, o.device(torch::kCPU)).to(o.device()) : torch::rand(shape, o.device(torch::kCPU)).to(o.device());
  return wrap(info.Env(), t);
}

static Napi::Value randint(const Napi::CallbackInfo& info) {
  int64_t low = toInt(info[0], "low"), high = toInt(info[1], "high");
  auto shape = intList(info[2], "shape");
  auto o = opts(info[3], info[4]);
  auto g = toGenerator(info[5]);
  torch::Tensor t = g ? torch::randint(low, high, shape, *g, o.device(torch::kCPU)).to(o.device())
                      : torch::randint(low, high, shape, o.device(torch::kCPU)).to(o.device());
  return wrap(info.Env(), t);
}

// ---- inspection and lifetime -----------------------------------------------------------------------

static Napi::Value shape(const Napi::CallbackInfo& info) {
  torch::Tensor& t = unwrap(info[0]);
  auto arr = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return arr;
}

static Napi::Value dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(unwrap(info[0]).scalar_type()));
}

static Napi::Value device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), unwrap(info[0]).device().str());
}

static Napi::Value dispose(const Napi::CallbackInfo& info) {
  auto* h = holderOf(info[0]);
  if (h == nullptr) throw ArgError("expected a tensor handle");
  if (h->t.defined()) {
    h->t = torch::Tensor();
    g_live--;
  }
  return info.Env().Undefined();
}

static Napi::Value isDisposed(const Napi::CallbackInfo& info) {
  auto* h = holderOf(info[0]);
  if (h == nullptr) throw ArgError("expected a tensor handle");
  return Napi::Boolean::New(info.Env(), !h->t.defined());
}

// ---- autograd --------------------------------------------------------------------------------------

static Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  unwrap(info[0]).requires_grad_(toBool(info[1]));
  return info.Env().Undefined();
}

static Napi::Value requiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).requires_grad());
}

static Napi::Value backward(const Napi::CallbackInfo& info) {
  torch::Tensor& t = unwrap(info[0]);
  if (!t.requires_grad())
    throw ArgError("backward() on a tensor that does not require grad: no parameter with requiresGrad fed into it, or it was computed under noGrad()");
  torch::Tensor g;
  if (info.Length() > 1 && info[1].IsExternal()) g = unwrap(info[1], "gradient");
  else if (t.numel() != 1) throw ArgError("backward() without a gradient needs a scalar; pass a gradient of the same shape");
  bool retain = info.Length() > 2 && toBool(info[2]);
  t.backward(g, retain);
  return info.Env().Undefined();
}

// torch::autograd::grad: d(outputs)/d(inputs) contracted with gradOutputs, without touching .grad; with
// createGraph the result has a graph of its own (double backward: Hessian-vector products).
// args: outputs[], inputs[], gradOutputs[] | null (each a tensor or null = ones for a scalar output),
//       createGraph, retainGraph (null: = createGraph), allowUnused (an unused input gives null)
static Napi::Value autogradGrad(const Napi::CallbackInfo& info) {
  std::vector<torch::Tensor> outputs = unwrapList(info[0]);
  std::vector<torch::Tensor> inputs = unwrapList(info[1]);
  if (outputs.empty()) throw ArgError("autograd.grad needs at least one output");
  if (inputs.empty()) throw ArgError("autograd.grad needs at least one input");
  for (size_t i = 0; i < outputs.size(); i++)
    if (!outputs[i].requires_grad())
      throw ArgError("autograd.grad: output " + std::to_string(i) + " (" + describeTensor(outputs[i]) +
                     ") does not require grad: no input with requiresGrad fed into it, or it was computed under noGrad()");
  for (size_t i = 0; i < inputs.size(); i++)
    if (!inputs[i].requires_grad())
      throw ArgError("autograd.grad: input " + std::to_string(i) + " (" + describeTensor(inputs[i]) +
                     ") does not require grad");
  std::vector<torch::Tensor> gradOutputs(outputs.size());
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    if (a.Length() != outputs.size())
      throw ArgError("autograd.grad: " + std::to_string(a.Length()) + " gradOutputs for " +
                     std::to_string(outputs.size()) + " outputs");
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (v.IsNull() || v.IsUndefined()) continue;
      const torch::Tensor& g = unwrap(v, "gradOutput");
      if (!g.sizes().equals(outputs[i].sizes()) || g.scalar_type() != outputs[i].scalar_type())
        throw ArgError("autograd.grad: gradOutput " + std::to_string(i) + " is " + describeTensor(g) +
                       ", output " + std::to_string(i) + " is " + describeTensor(outputs[i]) +
                       " (shape and dtype must match)");
      gradOutputs[i] = g;
    }
  }
  for (size_t i = 0; i < outputs.size(); i++)
    if (!gradOutputs[i].defined() && outputs[i].numel() != 1)
      throw ArgError("autograd.grad: output " + std::to_string(i) + " (" + describeTensor(outputs[i]) +
                     ") is not a scalar; pass its gradOutput");
  bool createGraph = info.Length() > 3 && toBool(info[3]);
  c10::optional<bool> retain = c10::nullopt;
  if (info.Length() > 4 && !info[4].IsNull() && !info[4].IsUndefined()) retain = toBool(info[4]);
  bool allowUnused = info.Length() > 5 && toBool(info[5]);
  std::vector<torch::Tensor> gs =
      torch::autograd::grad(outputs, inputs, gradOutputs, retain, createGraph, /*allow_unused=*/true);
  Napi::Array out = Napi::Array::New(info.Env(), gs.size());
  for (size_t i = 0; i < gs.size(); i++) {
    if (!gs[i].defined()) {
      if (!allowUnused)
        throw ArgError("autograd.grad: input " + std::to_string(i) + " (" + describeTensor(inputs[i]) +
                       ") is not used by the outputs; pass allowUnused to get null for it");
      out.Set(static_cast<uint32_t>(i), info.Env().Null());
    } else
      out.Set(static_cast<uint32_t>(i), wrap(info.Env(), gs[i]));
  }
  return out;
}

static Napi::Value grad(const Napi::CallbackInfo& info) {
  torch::Tensor g = unwrap(info[0]).grad();
  if (!g.defined()) return info.Env().Null();
  return wrap(info.Env(), g);
}

static Napi::Value setGrad(const Napi::CallbackInfo& info) {
  torch::Tensor& t = unwrap(info[0]);
  if (info[1].IsNull() || info[1].IsUndefined()) t.mutable_grad() = torch::Tensor();
  else {
    const torch::Tensor& g = unwrap(info[1], "gradient");
    if (!g.sizes().equals(t.sizes()) || g.scalar_type() != t.scalar_type() || g.device() != t.device())
      throw ArgError("the gradient must have the tensor's shape, dtype and device (got " + describeTensor(g) +
                     " for a " + describeTensor(t) + " tensor)");
    t.mutable_grad() = g.detach();
  }
  return info.Env().Undefined();
}

static Napi::Value zeroGrad(const Napi::CallbackInfo& info) {
  for (auto& t : unwrapList(info[0])) t.mutable_grad() = torch::Tensor();
  return info.Env().Undefined();
}

static Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(toBool(info[0]));
  return Napi::Boolean::New(info.Env(), prev);
}

// tensorVersions(handles) → the sum of their version counters: libtorch bumps a tensor's counter at every
// in-place write (optimizer steps, copy_ of loads, LoRA merges), and never lowers it, so the sum changes
// exactly when one of them was written.
static Napi::Value tensorVersions(const Napi::CallbackInfo& info) {
  double sum = 0;
  for (const auto& t : unwrapList(info[0])) sum += static_cast<double>(t._version());
  return Napi::Number::New(info.Env(), sum);
}

static Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  COHORT_EXPORT(exports, "init", init);
  COHORT_EXPORT(exports, "liveCount", liveCount);
  COHORT_EXPORT(exports, "setNumThreads", setNumThreads);
  COHORT_EXPORT(exports, "getNumThreads", getNumThreads);
  COHORT_EXPORT(exports, "cudaAvailable", cudaAvailable);
  COHORT_EXPORT(exports, "cudaDeviceCount", cudaDeviceCount);
  COHORT_EXPORT(exports, "versionInfo", versionInfo);
  COHORT_EXPORT(exports, "manualSeed", manualSeed);
  COHORT_EXPORT(exports, "newGenerator", newGenerator);
  COHORT_EXPORT(exports, "genGetState", genGetState);
  COHORT_EXPORT(exports, "genSetState", genSetState);
  COHORT_EXPORT(exports, "fromBuffer", fromBuffer);
  COHORT_EXPORT(exports, "toBuffer", toBuffer);
  COHORT_EXPORT(exports, "item", item);
  COHORT_EXPORT(exports, "scalarTensor", scalarTensor);
  COHORT_EXPORT(exports, "full", full);
  COHORT_EXPORT(exports, "arange", arange);
  COHORT_EXPORT(exports, "randn", randn);
  COHORT_EXPORT(exports, "rand", rand);
  COHORT_EXPORT(exports, "randint", randint);
  COHORT_EXPORT(exports, "shape", shape);
  COHORT_EXPORT(exports, "dtype", dtype);
  COHORT_EXPORT(exports, "device", device);
  COHORT_EXPORT(exports, "dispose", dispose);
  COHORT_EXPORT(exports, "isDisposed", isDisposed);
  COHORT_EXPORT(exports, "setRequiresGrad", setRequiresGrad);
  COHORT_EXPORT(exports, "requiresGrad", requiresGrad);
  COHORT_EXPORT(exports, "backward", backward);
  COHORT_EXPORT(exports, "grad", grad);
  COHORT_EXPORT(exports, "autogradGrad", autogradGrad);
  COHORT_EXPORT(exports, "setGrad", setGrad);
  COHORT_EXPORT(exports, "zeroGrad", zeroGrad);
  COHORT_EXPORT(exports, "setGradEnabled", setGradEnabled);
  COHORT_EXPORT(exports, "isGradEnabled", isGradEnabled);
  COHORT_EXPORT(exports, "tensorVersions", tensorVersions);
  registerOps(env, exports);
  registerOptim(env, exports);
  registerModelOps(env, exports);
  registerDist(env, exports);
  registerQuantOps(env, exports);
  registerLinalgOps(env, exports);
  registerCheckpoint(env, exports);
  return exports;
}

}  // namespace cohort

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return cohort::Init(env, exports); }
NODE_API_MODULE(cohort_native, InitModule)
