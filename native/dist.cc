// Data-parallel communication over PyTorch's c10d: a TCPStore rendezvous (rank 0 hosts the store) and a
// process group: Gloo on CPU, NCCL in a CUDA build compiled with COHORT_NCCL (scripts/libtorch.mjs sets it
// when the libtorch it finds has libtorch_cuda and nccl.h). Registered by registerDist.
//
// distInit(masterAddr, masterPort, worldSize, rank, timeoutMs, backend) → group handle (blocks until every
//   rank has joined, or throws after timeoutMs)
// distAllreduce(group, tensors, bucketBytes, timeoutMs)   in-place sum over ranks; tensors are flattened into
//   one contiguous buffer per bucket (same dtype and device, at most bucketBytes), every bucket is launched
//   before the first is waited on, and the sums are copied back
// distBroadcast(group, tensors, root, bucketBytes, timeoutMs)   in place, bucketed the same way
// distBarrier(group, timeoutMs)
// distAllgather(group, tensor, timeoutMs) → one tensor per rank (same shape and dtype on every rank)
// distStoreSet(group, key, value) / distStoreGet(group, key) → string   small values through the store
// distDestroy(group)                                              idempotent
//
// Gradient all-reduce overlapped with the backward pass, as PyTorch's DistributedDataParallel does it:
// distReducer(group, params, bucketBytes, timeoutMs) → reducer   a post hook on each parameter's gradient
//   accumulator (the autograd node that adds a backward pass's gradient into .grad), and fixed buckets over
//   the parameters in reverse order (the order their gradients become ready), each ≤ bucketBytes of one dtype
//   and device, with a persistent flat buffer
// distReducerPrepare(reducer)   arms it before the backward pass of an optimizer step's last micro-batch: when
//   every gradient of bucket k is accumulated and buckets 0..k-1 are launched, bucket k is copied into its
//   buffer and its all-reduce launched (Gloo and NCCL run it on their own threads) while backward goes on.
//   Buckets are launched in index order only, so every rank issues the same collectives in the same order
//   whatever order its gradients arrive in.
// distReducerFinish(reducer, finiteLoss) → whether the loss was finite on every rank   launches the buckets
//   the backward pass did not (a parameter without a gradient on this rank takes part with zeros; without
//   prepare, every bucket), then one more all-reduce of [had gradient per parameter…, non-finite loss], waits,
//   and writes the sums back into .grad (a parameter without a gradient on every rank is left without one)
// distReducerStats(reducer) → {buckets, launchedInBackward, launchedAfterBackward, steps}   launch counts since
//   the last prepare (or since a finish without one), finish calls in all
// distReducerDestroy(reducer)   removes the hooks (idempotent; also when the handle is collected)
//
// A collective that fails (a peer closed its connection, a timeout) throws; the JS side turns the message
// into one that names the missing rank.
#include "common.h"

#if __has_include(<gloo/algorithm.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define COHORT_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(COHORT_NCCL)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <utility>

namespace cohort {

using ms = std::chrono::milliseconds;

// The collectives Cohort uses, over whichever c10d class implements them (ProcessGroupGloo and
// ProcessGroupNCCL derive from ProcessGroup in libtorch 1.x and from Backend in 2.x; both have these methods).
struct Comm {
  virtual ~Comm() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& ts, ms timeout) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& ts, int root, ms timeout) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier(ms timeout) = 0;
  virtual c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& out,
                                                   std::vector<at::Tensor>& in, ms timeout) = 0;
};

template <typename PG>
struct CommOf : Comm {
  explicit CommOf(c10::intrusive_ptr<PG> p) : pg(std::move(p)) {}
  c10::intrusive_ptr<PG> pg;
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& ts, ms timeout) override {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = timeout;
    return pg->allreduce(ts, o);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& ts, int root, ms timeout) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = timeout;
    return pg->broadcast(ts, o);
  }
  c10::intrusive_ptr<c10d::Work> barrier(ms timeout) override {
    c10d::BarrierOptions o;
    o.timeout = timeout;
    return pg->barrier(o);
  }
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& out, std::vector<at::Tensor>& in,
                                           ms timeout) override {
    c10d::AllgatherOptions o;
    o.timeout = timeout;
    return pg->allgather(out, in, o);
  }
};

struct GroupHolder : Tagged {
  c10::intrusive_ptr<c10d::Store> store;
  std::shared_ptr<Comm> comm;  // reducers hold it weakly: distDestroy ends it
  int rank = 0;
  int worldSize = 1;
  std::string backend;
};

static GroupHolder& group(const Napi::Value& v) {
  auto* g = v.IsExternal() ? dynamic_cast<GroupHolder*>(v.As<Napi::External<Tagged>>().Data()) : nullptr;
  if (g == nullptr) throw ArgError("expected a process group handle (from distInit)");
  if (!g->comm) throw ArgError("the process group was destroyed; create a new one with distInit");
  return *g;
}

static ms timeoutArg(const Napi::Value& v) {
  double t = toDouble(v, "timeoutMs");
  if (!(t > 0)) throw ArgError("timeoutMs must be positive");
  return ms(static_cast<int64_t>(t));
}

// Waits for a collective; a timeout or a lost peer throws (the error names the op through `guarded`).
static void await(const c10::intrusive_ptr<c10d::Work>& w, ms timeout, const char* what) {
  if (!w->wait(timeout)) throw std::runtime_error(std::string(what) + " was aborted");
}

static Napi::Value distInit(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw ArgError("expected masterAddr to be a string");
  std::string addr = info[0].As<Napi::String>().Utf8Value();
  int64_t port = toInt(info[1], "masterPort");
  int64_t world = toInt(info[2], "worldSize");
  int64_t rank = toInt(info[3], "rank");
  ms timeout = timeoutArg(info[4]);
  std::string backend = info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "gloo";
  if (port <= 0 || port > 65535) throw ArgError("masterPort must be in 1..65535");
  if (world < 1) throw ArgError("worldSize must be at least 1");
  if (rank < 0 || rank >= world) throw ArgError("rank must be in 0..worldSize-1");

  auto h = std::make_unique<GroupHolder>();
  h->rank = static_cast<int>(rank);
  h->worldSize = static_cast<int>(world);
  h->backend = backend;
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = rank == 0;
  so.numWorkers = static_cast<std::size_t>(world);
  so.waitWorkers = true;
  so.timeout = timeout;
  h->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
  h->store->setTimeout(timeout);

  if (backend == "gloo") {
#if defined(COHORT_GLOO)
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME picks the network interface (as in PyTorch); a loopback master means one machine.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0') {
      std::string first(ifname);
      first = first.substr(0, first.find(','));
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(first));
    } else if (addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1") {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(h->store, h->rank, h->worldSize, o);
    h->comm = std::make_shared<CommOf<c10d::ProcessGroupGloo>>(pg);
#else
    throw ArgError(
        "this build of the addon has no Gloo backend (gloo headers were not found when it was built); install "
        "Debian's libgloo-dev and rebuild with `npm run build:native`");
#endif
  } else if (backend == "nccl") {
#if defined(COHORT_NCCL)
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(h->store, h->rank, h->worldSize, o);
    h->comm = std::make_shared<CommOf<c10d::ProcessGroupNCCL>>(pg);
#else
    throw ArgError(
        "this build of the addon has no NCCL backend; build it against a CUDA libtorch with NCCL (LIBTORCH "
        "pointing at a pip torch with CUDA) or use backend gloo");
#endif
  } else {
    throw ArgError("unknown backend '" + backend + "' (allowed: gloo, nccl)");
  }
  return Napi::External<Tagged>::New(info.Env(), h.release(), [](Napi::Env, Tagged* p) { delete p; });
}

// Tensors grouped into buckets of one dtype and device, each at most `bucketBytes` (a larger tensor is a
// bucket of its own). Order is kept, so every rank forms the same buckets from the same list.
static std::vector<std::vector<size_t>> buckets(const std::vector<torch::Tensor>& ts, int64_t bucketBytes) {
  std::vector<std::vector<size_t>> out;
  int64_t used = 0;
  for (size_t i = 0; i < ts.size(); i++) {
    int64_t bytes = ts[i].numel() * static_cast<int64_t>(ts[i].element_size());
    bool fits = !out.empty() && used + bytes <= bucketBytes &&
                ts[out.back().front()].scalar_type() == ts[i].scalar_type() &&
                ts[out.back().front()].device() == ts[i].device();
    if (!fits) {
      out.emplace_back();
      used = 0;
    }
    out.back().push_back(i);
    used += bytes;
  }
  return out;
}

// One flat buffer per bucket (a single contiguous tensor is used as is), the collective launched on every
// bucket, then the results copied back into the tensors.
template <typename Launch>
static void bucketed(std::vector<torch::Tensor>& ts, int64_t bucketBytes, ms timeout, const char* what,
                     Launch launch) {
  at::NoGradGuard ng;
  auto bs = buckets(ts, bucketBytes);
  std::vector<torch::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& b : bs) {
    torch::Tensor flat;
    if (b.size() == 1 && ts[b[0]].is_contiguous()) {
      flat = ts[b[0]];
    } else {
      std::vector<torch::Tensor> parts;
      parts.reserve(b.size());
      for (size_t i : b) parts.push_back(ts[i].reshape({-1}));
      flat = torch::cat(parts);
    }
    flats.push_back(flat);
    std::vector<torch::Tensor> one{flat};
    works.push_back(launch(one));
  }
  for (auto& w : works) await(w, timeout, what);
  for (size_t k = 0; k < bs.size(); k++) {
    auto& b = bs[k];
    if (b.size() == 1 && flats[k].is_same(ts[b[0]])) continue;
    int64_t off = 0;
    for (size_t i : b) {
      int64_t n = ts[i].numel();
      ts[i].copy_(flats[k].narrow(0, off, n).view(ts[i].sizes()));
      off += n;
    }
  }
}

static Napi::Value distAllreduce(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  auto ts = unwrapList(info[1]);
  int64_t bucketBytes = toInt(info[2], "bucketBytes");
  ms timeout = timeoutArg(info[3]);
  for (auto& t : ts)
    if (t.requires_grad() && t.is_leaf())
      throw ArgError("allreduce works in place; pass gradients or detached tensors, not parameters that require grad");
  bucketed(ts, bucketBytes, timeout, "allreduce", [&](std::vector<torch::Tensor>& one) {
    return g.comm->allreduce(one, timeout);
  });
  return info.Env().Undefined();
}

static Napi::Value distBroadcast(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  auto ts = unwrapList(info[1]);
  int64_t root = toInt(info[2], "root");
  int64_t bucketBytes = toInt(info[3], "bucketBytes");
  ms timeout = timeoutArg(info[4]);
  if (root < 0 || root >= g.worldSize) throw ArgError("root must be a rank in 0..worldSize-1");
  // parameters are written in place without recording the copy in autograd
  std::vector<torch::Tensor> plain;
  plain.reserve(ts.size());
  for (auto& t : ts) plain.push_back(t.detach());
  bucketed(plain, bucketBytes, timeout, "broadcast", [&](std::vector<torch::Tensor>& one) {
    return g.comm->broadcast(one, static_cast<int>(root), timeout);
  });
  return info.Env().Undefined();
}

static Napi::Value distBarrier(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  ms timeout = timeoutArg(info[1]);
  await(g.comm->barrier(timeout), timeout, "barrier");
  return info.Env().Undefined();
}

static Napi::Value distAllgather(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  torch::Tensor in = unwrap(info[1], "input").detach().contiguous();
  ms timeout = timeoutArg(info[2]);
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < g.worldSize; r++) out[0].push_back(torch::empty_like(in));
  std::vector<torch::Tensor> inputs{in};
  await(g.comm->allgather(out, inputs, timeout), timeout, "allgather");
  return wrapList(info.Env(), out[0]);
}

static Napi::Value distStoreSet(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  if (!info[1].IsString() || !info[2].IsString()) throw ArgError("expected a string key and a string value");
  std::string v = info[2].As<Napi::String>().Utf8Value();
  g.store->set(info[1].As<Napi::String>().Utf8Value(), std::vector<uint8_t>(v.begin(), v.end()));
  return info.Env().Undefined();
}

static Napi::Value distStoreGet(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  if (!info[1].IsString()) throw ArgError("expected a string key");
  auto v = g.store->get(info[1].As<Napi::String>().Utf8Value());
  return Napi::String::New(info.Env(), std::string(v.begin(), v.end()));
}

static Napi::Value distDestroy(const Napi::CallbackInfo& info) {
  auto* g = info[0].IsExternal() ? dynamic_cast<GroupHolder*>(info[0].As<Napi::External<Tagged>>().Data()) : nullptr;
  if (g == nullptr) throw ArgError("expected a process group handle (from distInit)");
  g->comm.reset();
  g->store.reset();
  return info.Env().Undefined();
}

// ---- gradient reducer: all-reduce overlapped with the backward pass ---------------------------------

// shared_ptr<Node> in libtorch 1.x, intrusive_ptr<Node> in 2.x; both have add_post_hook/del_post_hook.
using AccumulatorPtr = decltype(torch::autograd::impl::grad_accumulator(std::declval<const torch::Tensor&>()));

struct ReducerState {
  struct Bucket {
    std::vector<size_t> params;  // indices into ReducerState::params
    torch::Tensor flat;          // persistent buffer: the gradients side by side
    size_t pending = 0;          // gradients of the armed step not yet accumulated
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::weak_ptr<Comm> comm;
  ms timeout{0};
  std::vector<torch::Tensor> params;
  std::vector<AccumulatorPtr> accumulators;  // held, so the hooked nodes outlive every graph
  std::vector<uintptr_t> hookKeys;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucketOf;
  std::vector<char> ready;  // gradient accumulated during the armed backward
  std::vector<char> had;    // gradient present when its bucket was copied
  std::mutex mu;
  bool armed = false;
  size_t next = 0;  // buckets [0, next) are launched
  std::string error;
  int64_t inBackward = 0, afterBackward = 0, steps = 0;

  void reset(bool arm) {
    armed = arm;
    next = 0;
    error.clear();
    inBackward = 0;
    afterBackward = 0;
    std::fill(ready.begin(), ready.end(), 0);
    std::fill(had.begin(), had.end(), 0);
    for (auto& b : buckets) {
      b.pending = b.params.size();
      b.work.reset();
    }
  }

  std::shared_ptr<Comm> liveComm() {
    auto c = comm.lock();
    if (!c) throw ArgError("the process group was destroyed; create a new one with distInit");
    return c;
  }

  // Copies bucket `k`'s gradients into its buffer (zeros where a parameter has none) and launches its sum.
  void launch(size_t k) {
    at::NoGradGuard ng;
    auto& b = buckets[k];
    int64_t off = 0;
    for (size_t i : b.params) {
      const auto& p = params[i];
      int64_t n = p.numel();
      auto slot = b.flat.narrow(0, off, n).view(p.sizes());
      const auto& g = p.grad();
      had[i] = g.defined() ? 1 : 0;
      if (g.defined())
        slot.copy_(g);
      else
        slot.zero_();
      off += n;
    }
    std::vector<torch::Tensor> one{b.flat};
    b.work = liveComm()->allreduce(one, timeout);
  }

  // Called by the hook of parameter i once its gradient of this backward pass is in .grad.
  void gradReady(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || !error.empty()) return;
    if (ready[i]) {
      error =
          "a gradient was accumulated twice after distReducerPrepare: arm the reducer right before the last "
          "backward pass of an optimizer step, once";
      return;
    }
    ready[i] = 1;
    buckets[bucketOf[i]].pending--;
    try {
      while (next < buckets.size() && buckets[next].pending == 0) {
        launch(next);
        next++;
        inBackward++;
      }
    } catch (const c10::Error& e) {
      error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }

  void removeHooks() {
    for (size_t i = 0; i < hookKeys.size(); i++) accumulators[i]->del_post_hook(hookKeys[i]);
    hookKeys.clear();
    accumulators.clear();
  }
};

// The hook on a gradient accumulator (it does not change the gradients).
struct GradReadyHook : torch::autograd::FunctionPostHook {
  GradReadyHook(std::weak_ptr<ReducerState> s, size_t i) : state(std::move(s)), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto s = state.lock()) s->gradReady(index);
    return outputs;
  }
  std::weak_ptr<ReducerState> state;
  size_t index;
};

struct ReducerHolder : Tagged {
  std::shared_ptr<ReducerState> s;
  ~ReducerHolder() override {
    if (s) s->removeHooks();
  }
};

static ReducerState& reducer(const Napi::Value& v) {
  auto* r = v.IsExternal() ? dynamic_cast<ReducerHolder*>(v.As<Napi::External<Tagged>>().Data()) : nullptr;
  if (r == nullptr) throw ArgError("expected a gradient reducer handle (from distReducer)");
  if (!r->s) throw ArgError("the gradient reducer was destroyed; create a new one with distReducer");
  return *r->s;
}

static Napi::Value distReducer(const Napi::CallbackInfo& info) {
  auto& g = group(info[0]);
  auto params = unwrapList(info[1]);
  int64_t bucketBytes = toInt(info[2], "bucketBytes");
  ms timeout = timeoutArg(info[3]);
  if (params.empty()) throw ArgError("expected at least one parameter");
  if (bucketBytes <= 0) throw ArgError("bucketBytes must be positive");
  for (size_t i = 0; i < params.size(); i++) {
    if (!params[i].requires_grad() || !params[i].is_leaf())
      throw ArgError("parameter " + std::to_string(i) +
                     " is not a leaf tensor that requires grad; pass the model's trainable parameters");
    for (size_t j = 0; j < i; j++)
      if (params[j].unsafeGetTensorImpl() == params[i].unsafeGetTensorImpl())
        throw ArgError("parameters " + std::to_string(j) + " and " + std::to_string(i) +
                       " are the same tensor; list each parameter once");
  }
  auto s = std::make_shared<ReducerState>();
  s->comm = g.comm;
  s->timeout = timeout;
  s->params = params;
  // reverse order: the last parameters' gradients are ready first
  std::vector<torch::Tensor> reversed(params.rbegin(), params.rend());
  s->bucketOf.assign(params.size(), 0);
  for (auto& idx : buckets(reversed, bucketBytes)) {
    ReducerState::Bucket b;
    int64_t numel = 0;
    for (size_t r : idx) {
      size_t i = params.size() - 1 - r;
      b.params.push_back(i);
      s->bucketOf[i] = s->buckets.size();
      numel += params[i].numel();
    }
    b.flat = torch::zeros({numel}, params[b.params.front()].options().requires_grad(false));
    s->buckets.push_back(std::move(b));
  }
  s->ready.assign(params.size(), 0);
  s->had.assign(params.size(), 0);
  s->reset(false);
  for (size_t i = 0; i < params.size(); i++) {
    auto acc = torch::autograd::impl::grad_accumulator(params[i]);
    if (!acc) throw ArgError("parameter " + std::to_string(i) + " has no gradient accumulator");
    s->hookKeys.push_back(acc->add_post_hook(std::make_unique<GradReadyHook>(s, i)));
    s->accumulators.push_back(std::move(acc));
  }
  auto h = std::make_unique<ReducerHolder>();
  h->s = std::move(s);
  return Napi::External<Tagged>::New(info.Env(), h.release(), [](Napi::Env, Tagged* p) { delete p; });
}

static Napi::Value distReducerPrepare(const Napi::CallbackInfo& info) {
  auto& s = reducer(info[0]);
  std::lock_guard<std::mutex> lock(s.mu);
  s.reset(true);
  return info.Env().Undefined();
}

static Napi::Value distReducerFinish(const Napi::CallbackInfo& info) {
  auto& s = reducer(info[0]);
  bool finite = toBool(info[1]);
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.armed) s.reset(false);
  s.armed = false;
  s.steps++;
  if (!s.error.empty()) throw std::runtime_error("allreduce during the backward pass failed: " + s.error);
  at::NoGradGuard ng;
  for (; s.next < s.buckets.size(); s.next++) {
    s.launch(s.next);
    s.afterBackward++;
  }
  size_t n = s.params.size();
  // which parameters had a gradient on any rank, and whether any rank's loss was not finite
  std::vector<float> f(n + 1, 0.0f);
  for (size_t i = 0; i < n; i++) f[i] = s.had[i] ? 1.0f : 0.0f;
  f[n] = finite ? 0.0f : 1.0f;
  auto flags = torch::from_blob(f.data(), {static_cast<int64_t>(n + 1)}, torch::kFloat32)
                   .to(s.params.front().device(), /*non_blocking=*/false, /*copy=*/true);
  std::vector<torch::Tensor> one{flags};
  auto flagsWork = s.liveComm()->allreduce(one, s.timeout);
  for (auto& b : s.buckets) await(b.work, s.timeout, "allreduce");
  await(flagsWork, s.timeout, "allreduce");
  auto fl = flags.cpu();
  const float* sum = fl.data_ptr<float>();
  for (auto& b : s.buckets) {
    int64_t off = 0;
    for (size_t i : b.params) {
      auto& p = s.params[i];
      int64_t k = p.numel();
      auto slot = b.flat.narrow(0, off, k).view(p.sizes());
      off += k;
      if (sum[i] == 0.0f) continue;  // no rank had a gradient: left without one
      auto& g = p.mutable_grad();
      if (g.defined())
        g.copy_(slot);
      else
        g = slot.clone();
    }
    b.work.reset();
  }
  return Napi::Boolean::New(info.Env(), sum[n] == 0.0f);
}

static Napi::Value distReducerStats(const Napi::CallbackInfo& info) {
  auto& s = reducer(info[0]);
  std::lock_guard<std::mutex> lock(s.mu);
  auto o = Napi::Object::New(info.Env());
  o.Set("buckets", static_cast<double>(s.buckets.size()));
  o.Set("launchedInBackward", static_cast<double>(s.inBackward));
  o.Set("launchedAfterBackward", static_cast<double>(s.afterBackward));
  o.Set("steps", static_cast<double>(s.steps));
  return o;
}

static Napi::Value distReducerDestroy(const Napi::CallbackInfo& info) {
  auto* r = info[0].IsExternal() ? dynamic_cast<ReducerHolder*>(info[0].As<Napi::External<Tagged>>().Data()) : nullptr;
  if (r == nullptr) throw ArgError("expected a gradient reducer handle (from distReducer)");
  if (r->s) {
    std::lock_guard<std::mutex> lock(r->s->mu);
    r->s->removeHooks();
  }
  r->s.reset();
  return info.Env().Undefined();
}

static Napi::Value distBackends(const Napi::CallbackInfo& info) {
  auto arr = Napi::Array::New(info.Env());
  uint32_t n = 0;
#if defined(COHORT_GLOO)
  arr.Set(n++, Napi::String::New(info.Env(), "gloo"));
#endif
#if defined(COHORT_NCCL)
  arr.Set(n++, Napi::String::New(info.Env(), "nccl"));
#endif
  (void)n;
  return arr;
}

void registerDist(Napi::Env env, Napi::Object exports) {
  COHORT_EXPORT(exports, "distInit", distInit);
  COHORT_EXPORT(exports, "distAllreduce", distAllreduce);
  COHORT_EXPORT(exports, "distBroadcast", distBroadcast);
  COHORT_EXPORT(exports, "distBarrier", distBarrier);
  COHORT_EXPORT(exports, "distAllgather", distAllgather);
  COHORT_EXPORT(exports, "distStoreSet", distStoreSet);
  COHORT_EXPORT(exports, "distStoreGet", distStoreGet);
  COHORT_EXPORT(exports, "distDestroy", distDestroy);
  COHORT_EXPORT(exports, "distBackends", distBackends);
  COHORT_EXPORT(exports, "distReducer", distReducer);
  COHORT_EXPORT(exports, "distReducerPrepare", distReducerPrepare);
  COHORT_EXPORT(exports, "distReducerFinish", distReducerFinish);
  COHORT_EXPORT(exports, "distReducerStats", distReducerStats);
  COHORT_EXPORT(exports, "distReducerDestroy", distReducerDestroy);
}

}  // namespace cohort
