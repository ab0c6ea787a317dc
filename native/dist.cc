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
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>

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
  std::unique_ptr<Comm> comm;
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
    h->comm = std::make_unique<CommOf<c10d::ProcessGroupGloo>>(pg);
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
    h->comm = std::make_unique<CommOf<c10d::ProcessGroupNCCL>>(pg);
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
}

}  // namespace cohort
