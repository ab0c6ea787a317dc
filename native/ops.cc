// Tensor ops with autograd: elementwise, reductions, indexing, shape ops, and the fused ops the model and
// the losses need. Each function reads its JS arguments, calls ATen, and returns new handles.
#include "common.h"

#include <ATen/ScalarOps.h>

namespace cohort {

#define A(i) unwrap(info[i])

// A number as PyTorch wraps it in an op with a tensor: a 0-d tensor marked as a wrapped number, so it
// takes part in type promotion as a Python scalar would (2.5 - i64 tensor → f32, 2 * i64 tensor → i64).
static torch::Tensor wrappedScalar(const c10::Scalar& s, const torch::Tensor& like) {
  torch::Tensor t = c10::scalar_to_tensor(s, like.device());
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}
#define RET(expr) return wrap(info.Env(), (expr))

// ---- elementwise -----------------------------------------------------------------------------------

#define UNARY(name, expr)                                     \
  static Napi::Value name(const Napi::CallbackInfo& info) {   \
    const torch::Tensor& x = A(0);                            \
    RET(expr);                                                \
  }
UNARY(neg, x.neg())
UNARY(exp, x.exp())
UNARY(log, x.log())
UNARY(log1p, x.log1p())
UNARY(expm1, x.expm1())
UNARY(sqrt, x.sqrt())
UNARY(rsqrt, x.rsqrt())
UNARY(sigmoid, x.sigmoid())
UNARY(logsigmoid, torch::log_sigmoid(x))
UNARY(silu, torch::silu(x))
UNARY(gelu, torch::gelu(x))
UNARY(relu, x.relu())
UNARY(softplus, torch::softplus(x))
UNARY(tanh, x.tanh())
UNARY(abs, x.abs())
UNARY(sign, x.sign())
UNARY(square, x.square())
UNARY(reciprocal, x.reciprocal())
UNARY(sin, x.sin())
UNARY(cos, x.cos())
UNARY(floor, x.floor())
UNARY(ceil, x.ceil())
UNARY(round, x.round())
UNARY(erf, x.erf())
UNARY(logicalNot, x.logical_not())
UNARY(isnan, x.isnan())
UNARY(isfinite, x.isfinite())
UNARY(detach, x.detach())
UNARY(clone, x.clone())
UNARY(contiguous, x.contiguous())

// Binary ops take tensor|number on either side (the facade puts the tensor first where it can).
#define BINARY(name, fn)                                                                  \
  static Napi::Value name(const Napi::CallbackInfo& info) {                               \
    TensorOrScalar a = tensorOrScalar(info[0]);                                           \
    TensorOrScalar b = tensorOrScalar(info[1]);                                           \
    if (a.t && b.t) RET(fn(*a.t, *b.t));                                                  \
    if (a.t) RET(fn(*a.t, b.s));                                                          \
    if (b.t) RET(fn(wrappedScalar(a.s, *b.t), *b.t));                                       \
    throw ArgError("at least one operand must be a tensor");                              \
  }
BINARY(add, torch::add)
BINARY(sub, torch::sub)
BINARY(mul, torch::mul)
BINARY(div, torch::div)
BINARY(pow, torch::pow)
BINARY(remainder, torch::remainder)
BINARY(eq, torch::eq)
BINARY(ne, torch::ne)
BINARY(lt, torch::lt)
BINARY(le, torch::le)
BINARY(gt, torch::gt)
BINARY(ge, torch::ge)

#define BINARY_T(name, fn)                                                    \
  static Napi::Value name(const Napi::CallbackInfo& info) {                   \
    TensorOrScalar a = tensorOrScalar(info[0]);                               \
    TensorOrScalar b = tensorOrScalar(info[1]);                               \
    if (!a.t && !b.t) throw ArgError("at least one operand must be a tensor");  \
    const torch::Tensor& ref = a.t ? *a.t : *b.t;                             \
    auto ta = a.t ? *a.t : wrappedScalar(a.s, ref);                           \
    auto tb = b.t ? *b.t : wrappedScalar(b.s, ref);                           \
    RET(fn(ta, tb));                                                          \
  }
BINARY_T(maximum, torch::maximum)
BINARY_T(minimum, torch::minimum)
BINARY_T(logicalAnd, torch::logical_and)
BINARY_T(logicalOr, torch::logical_or)
BINARY_T(atan2, torch::atan2)

static Napi::Value clamp(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  auto lo = info[1], hi = info[2];
  bool hasLo = !(lo.IsNull() || lo.IsUndefined()), hasHi = !(hi.IsNull() || hi.IsUndefined());
  if ((hasLo && lo.IsExternal()) || (hasHi && hi.IsExternal())) {
    c10::optional<torch::Tensor> l, h;
    if (hasLo) l = lo.IsExternal() ? unwrap(lo) : torch::scalar_tensor(toDouble(lo, "min"), x.options().requires_grad(false));
    if (hasHi) h = hi.IsExternal() ? unwrap(hi) : torch::scalar_tensor(toDouble(hi, "max"), x.options().requires_grad(false));
    RET(torch::clamp(x, l, h));
  }
  c10::optional<c10::Scalar> l, h;
  if (hasLo) l = toDouble(lo, "min");
  if (hasHi) h = toDouble(hi, "max");
  RET(torch::clamp(x, l, h));
}

static Napi::Value where(const Napi::CallbackInfo& info) {
  const torch::Tensor& c = A(0);
  TensorOrScalar a = tensorOrScalar(info[1]);
  TensorOrScalar b = tensorOrScalar(info[2]);
  if (a.t && b.t) RET(torch::where(c, *a.t, *b.t));
  if (a.t) RET(torch::where(c, *a.t, torch::scalar_tensor(b.s, a.t->options().requires_grad(false))));
  if (b.t) RET(torch::where(c, torch::scalar_tensor(a.s, b.t->options().requires_grad(false)), *b.t));
  throw ArgError("where() needs at least one tensor branch");
}

static Napi::Value maskedFill(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  const torch::Tensor& m = unwrap(info[1], "mask");
  if (m.scalar_type() != torch::kBool) throw ArgError("masked_fill mask must be a bool tensor");
  RET(x.masked_fill(m, toDouble(info[2], "value")));
}

static Napi::Value cast(const Napi::CallbackInfo& info) { RET(A(0).to(toDtype(info[1]))); }
static Napi::Value toDev(const Napi::CallbackInfo& info) { RET(A(0).to(toDevice(info[1]))); }

// ---- matmul ----------------------------------------------------------------------------------------

static Napi::Value matmul(const Napi::CallbackInfo& info) { RET(torch::matmul(A(0), A(1))); }
static Napi::Value bmm(const Napi::CallbackInfo& info) { RET(torch::bmm(A(0), A(1))); }
// linear(x, w[, b]) = x @ wᵀ + b, with w of shape [out, in] (the Hugging Face layout).
static Napi::Value linear(const Napi::CallbackInfo& info) {
  c10::optional<torch::Tensor> b;
  if (info.Length() > 2 && info[2].IsExternal()) b = unwrap(info[2], "bias");
  RET(torch::linear(A(0), A(1), b));
}

// ---- reductions ------------------------------------------------------------------------------------

static std::vector<int64_t> dimsOrAll(const Napi::Value& v, const torch::Tensor& x) {
  if (v.IsNull() || v.IsUndefined()) {
    std::vector<int64_t> all(x.dim());
    for (int64_t i = 0; i < x.dim(); i++) all[i] = i;
    return all;
  }
  return intList(v, "dims");
}

static Napi::Value sum(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  if (info[1].IsNull() || info[1].IsUndefined()) RET(x.sum());
  RET(x.sum(intList(info[1], "dims"), toBool(info[2])));
}
static Napi::Value mean(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  if (info[1].IsNull() || info[1].IsUndefined()) RET(x.mean());
  RET(x.mean(intList(info[1], "dims"), toBool(info[2])));
}
static Napi::Value amax(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  RET(x.amax(dimsOrAll(info[1], x), toBool(info[2])));
}
static Napi::Value amin(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  RET(x.amin(dimsOrAll(info[1], x), toBool(info[2])));
}
static Napi::Value prod(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  if (info[1].IsNull() || info[1].IsUndefined()) RET(x.prod());
  RET(x.prod(toInt(info[1], "dim"), toBool(info[2])));
}
static Napi::Value logsumexp(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  RET(torch::logsumexp(x, dimsOrAll(info[1], x), toBool(info[2])));
}
static Napi::Value var(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  auto dims = dimsOrAll(info[1], x);
  RET(torch::var(x, at::OptionalIntArrayRef(dims), toBool(info[2]) ? 1 : 0, toBool(info[3])));
}
static Napi::Value stdev(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  auto dims = dimsOrAll(info[1], x);
  RET(torch::std(x, at::OptionalIntArrayRef(dims), toBool(info[2]) ? 1 : 0, toBool(info[3])));
}
static Napi::Value maxDim(const Napi::CallbackInfo& info) {
  auto r = torch::max(A(0), toInt(info[1], "dim"), toBool(info[2]));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value minDim(const Napi::CallbackInfo& info) {
  auto r = torch::min(A(0), toInt(info[1], "dim"), toBool(info[2]));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value argmax(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  if (info[1].IsNull() || info[1].IsUndefined()) RET(x.argmax());
  RET(x.argmax(toInt(info[1], "dim"), toBool(info[2])));
}
static Napi::Value all(const Napi::CallbackInfo& info) { RET(A(0).all()); }
static Napi::Value any(const Napi::CallbackInfo& info) { RET(A(0).any()); }
static Napi::Value norm(const Napi::CallbackInfo& info) { RET(A(0).norm()); }
static Napi::Value softmax(const Napi::CallbackInfo& info) { RET(torch::softmax(A(0), toInt(info[1], "dim"))); }
static Napi::Value logSoftmax(const Napi::CallbackInfo& info) { RET(torch::log_softmax(A(0), toInt(info[1], "dim"))); }
static Napi::Value cumsum(const Napi::CallbackInfo& info) { RET(torch::cumsum(A(0), toInt(info[1], "dim"))); }

// ---- indexing --------------------------------------------------------------------------------------

// gather, scatterAdd and tokenLogprobs take i64 indices only. PyTorch 1.13 refuses other dtypes while 2.x
// also accepts i32, so the check is made here and every libtorch gives the same error.
static const torch::Tensor& int64Index(const torch::Tensor& index, const char* what) {
  if (index.scalar_type() != torch::kInt64)
    throw ArgError(std::string(what) + " must be an int64 tensor, got " + dtypeName(index.scalar_type()) +
                   "; convert it with .to(\"i64\")");
  return index;
}
static Napi::Value gather(const Napi::CallbackInfo& info) {
  RET(torch::gather(A(0), toInt(info[1], "dim"), int64Index(unwrap(info[2], "index"), "index")));
}
static Napi::Value indexSelect(const Napi::CallbackInfo& info) { RET(torch::index_select(A(0), toInt(info[1], "dim"), unwrap(info[2], "index"))); }
static Napi::Value scatterAdd(const Napi::CallbackInfo& info) {
  const torch::Tensor& index = int64Index(unwrap(info[2], "index"), "index");
  RET(torch::scatter_add(A(0), toInt(info[1], "dim"), index, unwrap(info[3], "src")));
}
static Napi::Value embedding(const Napi::CallbackInfo& info) { RET(torch::embedding(A(0), unwrap(info[1], "indices"))); }
static Napi::Value maskedSelect(const Napi::CallbackInfo& info) { RET(torch::masked_select(A(0), unwrap(info[1], "mask"))); }
static Napi::Value nonzero(const Napi::CallbackInfo& info) { RET(torch::nonzero(A(0))); }
static Napi::Value topk(const Napi::CallbackInfo& info) {
  auto r = torch::topk(A(0), toInt(info[1], "k"), toInt(info[2], "dim"), toBool(info[3]), toBool(info[4]));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value sort(const Napi::CallbackInfo& info) {
  auto r = torch::sort(A(0), toInt(info[1], "dim"), toBool(info[2]));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value argsort(const Napi::CallbackInfo& info) { RET(torch::argsort(A(0), toInt(info[1], "dim"), toBool(info[2]))); }
static Napi::Value multinomial(const Napi::CallbackInfo& info) {
  auto g = toGenerator(info[3]);
  RET(torch::multinomial(A(0), toInt(info[1], "numSamples"), toBool(info[2]), g));
}

// ---- shape -----------------------------------------------------------------------------------------

static Napi::Value reshape(const Napi::CallbackInfo& info) { RET(A(0).reshape(intList(info[1], "shape"))); }
static Napi::Value view(const Napi::CallbackInfo& info) { RET(A(0).view(intList(info[1], "shape"))); }
static Napi::Value permute(const Napi::CallbackInfo& info) { RET(A(0).permute(intList(info[1], "dims"))); }
static Napi::Value transpose(const Napi::CallbackInfo& info) { RET(A(0).transpose(toInt(info[1], "dim0"), toInt(info[2], "dim1"))); }
static Napi::Value unsqueeze(const Napi::CallbackInfo& info) { RET(A(0).unsqueeze(toInt(info[1], "dim"))); }
static Napi::Value squeeze(const Napi::CallbackInfo& info) {
  if (info[1].IsNull() || info[1].IsUndefined()) RET(A(0).squeeze());
  RET(A(0).squeeze(toInt(info[1], "dim")));
}
static Napi::Value expand(const Napi::CallbackInfo& info) { RET(A(0).expand(intList(info[1], "shape"))); }
static Napi::Value flatten(const Napi::CallbackInfo& info) { RET(A(0).flatten(toInt(info[1], "startDim"), toInt(info[2], "endDim"))); }
static Napi::Value repeat(const Napi::CallbackInfo& info) { RET(A(0).repeat(intList(info[1], "repeats"))); }
static Napi::Value repeatInterleave(const Napi::CallbackInfo& info) {
  RET(torch::repeat_interleave(A(0), toInt(info[1], "repeats"), toInt(info[2], "dim")));
}
static Napi::Value narrow(const Napi::CallbackInfo& info) {
  RET(A(0).narrow(toInt(info[1], "dim"), toInt(info[2], "start"), toInt(info[3], "length")));
}
static Napi::Value slice(const Napi::CallbackInfo& info) {
  c10::optional<int64_t> start, end;
  if (!info[2].IsNull() && !info[2].IsUndefined()) start = toInt(info[2], "start");
  if (!info[3].IsNull() && !info[3].IsUndefined()) end = toInt(info[3], "end");
  int64_t step = info.Length() > 4 && info[4].IsNumber() ? toInt(info[4], "step") : 1;
  RET(A(0).slice(toInt(info[1], "dim"), start, end, step));
}
static Napi::Value select(const Napi::CallbackInfo& info) { RET(A(0).select(toInt(info[1], "dim"), toInt(info[2], "index"))); }
static Napi::Value cat(const Napi::CallbackInfo& info) { RET(torch::cat(unwrapList(info[0]), toInt(info[1], "dim"))); }
static Napi::Value stack(const Napi::CallbackInfo& info) { RET(torch::stack(unwrapList(info[0]), toInt(info[1], "dim"))); }
static Napi::Value split(const Napi::CallbackInfo& info) {
  int64_t dim = toInt(info[2], "dim");
  if (info[1].IsArray()) return wrapList(info.Env(), A(0).split_with_sizes(intList(info[1], "sizes"), dim));
  return wrapList(info.Env(), A(0).split(toInt(info[1], "size"), dim));
}
static Napi::Value chunk(const Napi::CallbackInfo& info) { return wrapList(info.Env(), A(0).chunk(toInt(info[1], "chunks"), toInt(info[2], "dim"))); }
static Napi::Value tril(const Napi::CallbackInfo& info) { RET(torch::tril(A(0), toInt(info[1], "diagonal"))); }
static Napi::Value triu(const Napi::CallbackInfo& info) { RET(torch::triu(A(0), toInt(info[1], "diagonal"))); }

// ---- in place (no autograd history on leaves: optimizers, LoRA merge, cache writes) ------------------

static Napi::Value copy_(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  A(0).copy_(unwrap(info[1], "src"));
  return info.Env().Undefined();
}
static Napi::Value sliceAssign_(const Napi::CallbackInfo& info) {
  // dst.narrow(dim, start, src.size(dim)).copy_(src)
  at::NoGradGuard ng;
  const torch::Tensor& src = unwrap(info[3], "src");
  int64_t dim = toInt(info[1], "dim");
  A(0).narrow(dim, toInt(info[2], "start"), src.size(dim)).copy_(src);
  return info.Env().Undefined();
}
static Napi::Value addScaled_(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  A(0).add_(unwrap(info[1], "other"), toDouble(info[2], "alpha"));
  return info.Env().Undefined();
}
static Napi::Value mulScalar_(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  A(0).mul_(toDouble(info[1], "value"));
  return info.Env().Undefined();
}

// ---- fused -----------------------------------------------------------------------------------------

// tokenLogprobs(logits [.., V], targets [..] i64, temperature, withEntropy) → [lp, entropy?]
// lp = z[target] − logsumexp(z), z = logits / T; entropy = logsumexp(z) − Σ softmax(z)·z.
// Never materialises a second [.., V] log-softmax beyond what autograd needs.
static Napi::Value tokenLogprobs(const Napi::CallbackInfo& info) {
  torch::Tensor z = A(0);
  const torch::Tensor& tgt = int64Index(unwrap(info[1], "targets"), "targets");
  double temp = toDouble(info[2], "temperature");
  bool withEnt = toBool(info[3]);
  if (temp != 1.0) z = z / temp;
  torch::Tensor lse = torch::logsumexp(z, {-1}, false);
  torch::Tensor picked = z.gather(-1, tgt.unsqueeze(-1)).squeeze(-1);
  torch::Tensor lp = picked - lse;
  if (!withEnt) return wrapList(info.Env(), {lp});
  // −inf logits (masked vocabulary) have p = 0; zeroing them keeps 0·(−inf) out of the sum and its gradient.
  torch::Tensor zFinite = z.masked_fill(z.isneginf(), 0);
  torch::Tensor ent = lse - (torch::softmax(z, -1) * zFinite).sum(-1);
  return wrapList(info.Env(), {lp, ent});
}

// rmsNorm(x, weight, eps) = x · rsqrt(mean(x², -1) + eps) · weight, computed in fp32.
static Napi::Value rmsNorm(const Napi::CallbackInfo& info) {
  const torch::Tensor& x = A(0);
  const torch::Tensor& w = unwrap(info[1], "weight");
  double eps = toDouble(info[2], "eps");
  auto xf = x.to(torch::kFloat32);
  auto y = xf * torch::rsqrt(xf.pow(2).mean({-1}, true) + eps);
  RET(y.to(x.scalar_type()) * w);
}

// attention(q [B,H,T,D], k [B,H,S,D], v [B,H,S,D], mask [.., T, S] bool (true = attend) | null, causal)
// `causal` aligns the last query with the last key (query i sees keys j ≤ i + S − T), the KV-cache
// convention. PyTorch's is_causal aligns the first query with the first key instead when T ≠ S (and 1.13
// has no scaled_dot_product_attention), so the causal mask is built here unless T = S, where both agree.
static Napi::Value attention(const Napi::CallbackInfo& info) {
  const torch::Tensor& q = A(0);
  const torch::Tensor& k = unwrap(info[1], "k");
  const torch::Tensor& v = unwrap(info[2], "v");
  c10::optional<torch::Tensor> mask;
  if (info[3].IsExternal()) {
    mask = unwrap(info[3], "mask");
    if (mask->scalar_type() != torch::kBool)
      throw ArgError("attention mask must be a bool tensor (true = attend); convert an additive mask with .eq(0)");
  }
  const bool causal = toBool(info[4]);
  const int64_t T = q.size(-2), S = k.size(-2);
#if TORCH_VERSION_MAJOR >= 2
  if (causal && !mask && T == S) RET(at::scaled_dot_product_attention(q, k, v, c10::nullopt, 0.0, true));
#endif
  if (causal) {
    auto cm = torch::ones({T, S}, q.options().dtype(torch::kBool)).tril(S - T);  // [T, S]: j ≤ i + S − T
    mask = mask ? mask->logical_and(cm) : cm;
  }
  // A query with no key to attend gets zeros and zero gradients with every libtorch: a softmax over −inf
  // alone is NaN on 1.13 (and in some 2.x kernels), so such rows attend every key and are zeroed after.
  c10::optional<torch::Tensor> none;
  if (mask) {
    none = mask->logical_not().all(-1, true);  // [.., T, 1]
    mask = mask->logical_or(*none);
  }
#if TORCH_VERSION_MAJOR >= 2
  torch::Tensor out = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false);
#else
  double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, T, S]
  if (mask) scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<float>::infinity());
  torch::Tensor out = torch::matmul(torch::softmax(scores, -1), v);  // [B, H, T, D]
#endif
  if (none) out = out.masked_fill(*none, 0.0);
  RET(out);
}

void registerOps(Napi::Env env, Napi::Object exports) {
#define REG(n) COHORT_EXPORT(exports, #n, n)
  REG(neg); REG(exp); REG(log); REG(log1p); REG(expm1); REG(sqrt); REG(rsqrt); REG(sigmoid); REG(logsigmoid);
  REG(silu); REG(gelu); REG(relu); REG(softplus); REG(tanh); REG(abs); REG(sign); REG(square); REG(reciprocal);
  REG(sin); REG(cos); REG(floor); REG(ceil); REG(round); REG(erf); REG(logicalNot); REG(isnan); REG(isfinite);
  REG(detach); REG(clone); REG(contiguous);
  REG(add); REG(sub); REG(mul); REG(div); REG(pow); REG(remainder); REG(eq); REG(ne); REG(lt); REG(le); REG(gt);
  REG(ge); REG(maximum); REG(minimum); REG(logicalAnd); REG(logicalOr); REG(atan2);
  REG(clamp); REG(where); REG(maskedFill); REG(cast); REG(toDev);
  REG(matmul); REG(bmm); REG(linear);
  REG(sum); REG(mean); REG(amax); REG(amin); REG(prod); REG(logsumexp); REG(var); REG(stdev); REG(maxDim);
  REG(minDim); REG(argmax); REG(all); REG(any); REG(norm); REG(softmax); REG(logSoftmax); REG(cumsum);
  REG(gather); REG(indexSelect); REG(scatterAdd); REG(embedding); REG(maskedSelect); REG(nonzero); REG(topk);
  REG(sort); REG(argsort); REG(multinomial);
  REG(reshape); REG(view); REG(permute); REG(transpose); REG(unsqueeze); REG(squeeze); REG(expand); REG(flatten);
  REG(repeat); REG(repeatInterleave); REG(narrow); REG(slice); REG(select); REG(cat); REG(stack); REG(split);
  REG(chunk); REG(tril); REG(triu);
  REG(copy_); REG(sliceAssign_); REG(addScaled_); REG(mulScalar_);
  REG(tokenLogprobs); REG(rmsNorm); REG(attention);
#undef REG
}

}  // namespace cohort
