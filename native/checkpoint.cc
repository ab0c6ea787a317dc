// Activation checkpointing (Chen et al. 2016, arXiv:1604.06174 [PAPER-KNOWN]; the scheme of PyTorch's
// torch.utils.checkpoint). Registered by registerCheckpoint.
//
// checkpoint(fn, inputs, params): runs the JS function fn(inputs) with autograd off, so none of the
// region's intermediates are kept, and returns its output as the output of one graph node. That node's
// backward runs fn again with autograd on, over detached copies of the inputs, and differentiates the
// recomputation with respect to the inputs that need a gradient and the given params (the trainable
// tensors the region reads): the gradients are those of the plain path, the memory is one input per region.
//
// The backward calls into JavaScript, so it has to run on the JS thread. libtorch runs the backward of CPU
// tensors on the thread that called backward(); on other devices a worker thread would run it, so the
// node refuses (the model refuses checkpointing off the CPU before that).
#include <thread>

#include "common.h"

namespace cohort {

// The region's JS function and what its backward needs; freed with the graph node (on the JS thread).
struct JsRegion : torch::CustomClassHolder {
  JsRegion(Napi::Env e, Napi::Function f) : env(e), fn(Napi::Persistent(f)), thread(std::this_thread::get_id()) {}
  Napi::Env env;
  Napi::FunctionReference fn;
  std::thread::id thread;  // the JS thread that made the region (each worker_thread has its own)
  std::vector<torch::Tensor> inputs;  // detached
  std::vector<torch::Tensor> params;  // the live leaves
};

// fn(handles of `inputs`) → the tensor it returns, moved out of its JS handle (which reads as disposed after).
static torch::Tensor callRegion(JsRegion& r, const std::vector<torch::Tensor>& inputs) {
  if (std::this_thread::get_id() != r.thread)
    throw std::runtime_error(
        "checkpoint: the recomputation must run on the JavaScript thread; activation checkpointing works on CPU "
        "tensors only");
  Napi::HandleScope scope(r.env);
  auto arr = Napi::Array::New(r.env, inputs.size());
  for (size_t i = 0; i < inputs.size(); i++) arr.Set(static_cast<uint32_t>(i), wrap(r.env, inputs[i]));
  Napi::Value out = r.fn.Call({arr});
  Holder* h = holderOf(out);
  if (h == nullptr || !h->t.defined()) throw ArgError("checkpoint: the region must return one live tensor");
  torch::Tensor t = std::move(h->t);
  h->t = torch::Tensor();
  g_live--;
  return t;
}

struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                c10::intrusive_ptr<JsRegion> region, at::TensorList inputs,
                                                at::TensorList params) {
    for (const auto& t : inputs) region->inputs.push_back(t.detach());
    for (const auto& p : params) region->params.push_back(p);
    torch::Tensor out = callRegion(*region, region->inputs);  // autograd is off here (Function::apply)
    ctx->saved_data["region"] = c10::IValue::make_capsule(region);
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto region = c10::static_intrusive_pointer_cast<JsRegion>(ctx->saved_data["region"].toCapsule());
    const size_t nIn = region->inputs.size(), nParam = region->params.size();
    // one result per forward argument: the region itself (no gradient), then each input, then each param
    torch::autograd::variable_list result(1 + nIn + nParam);
    std::vector<torch::Tensor> ins, wrt;
    std::vector<size_t> slot;
    for (size_t i = 0; i < nIn; i++) {
      torch::Tensor t = region->inputs[i].detach();
      if (t.is_floating_point() && ctx->needs_input_grad(i)) {
        t.requires_grad_(true);
        wrt.push_back(t);
        slot.push_back(1 + i);
      }
      ins.push_back(t);
    }
    for (size_t j = 0; j < nParam; j++) {
      if (!ctx->needs_input_grad(nIn + j)) continue;
      wrt.push_back(region->params[j]);
      slot.push_back(1 + nIn + j);
    }
    torch::Tensor out;
    {
      torch::AutoGradMode on(true);
      out = callRegion(*region, ins);
    }
    if (!wrt.empty() && out.requires_grad() && grads[0].defined()) {
      auto g = torch::autograd::grad({out}, wrt, {grads[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
      for (size_t k = 0; k < g.size(); k++) result[slot[k]] = g[k];
    }
    region->inputs.clear();
    region->params.clear();
    return result;
  }
};

// checkpoint(fn: (handles) => handle, inputs: handle[], params: handle[]) → handle. See the header.
static Napi::Value checkpoint(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw ArgError("checkpoint: expected a function as the first argument");
  auto inputs = unwrapList(info[1]);
  auto params = unwrapList(info[2]);
  for (const auto& t : inputs)
    if (!t.device().is_cpu()) throw ArgError("checkpoint: activation checkpointing works on CPU tensors only");
  auto region = c10::make_intrusive<JsRegion>(info.Env(), info[0].As<Napi::Function>());
  auto out = Checkpoint::apply(region, at::TensorList(inputs), at::TensorList(params));
  return wrap(info.Env(), out[0]);
}

void registerCheckpoint(Napi::Env env, Napi::Object exports) {
  COHORT_EXPORT(exports, "checkpoint", checkpoint);
}

}  // namespace cohort
