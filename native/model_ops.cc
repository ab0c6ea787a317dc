// Fused ops for the model and the sampler. Registered by registerModelOps.
//
// decodeAttention: attention of one new query token per sequence over a preallocated KV cache, as a
//   plain loop over (batch, head). On a CPU, batched matmuls of [1,D]x[D,S] pieces and broadcasted
//   elementwise attention both spend their time allocating [B,H,S,·] temporaries (DESIGN.md §6); this
//   reads each cached key and value once.
// sampleTokens: one sampling step for a batch, each row with its own generator: temperature, the
//   log-prob of the drawn token under softmax(logits / T) before any truncation, then top-k, top-p and
//   min-p truncation and an inverse-CDF draw.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/DistributionsHelper.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common.h"

namespace cohort {

// One (batch row, query head) of single-token attention: w is scratch of S floats, o receives [D].
// Portable version (any D, any x86-64 or other CPU).
static void attendOneScalar(const float* q, const float* kbase, const float* vbase, const bool* m, int64_t S,
                            int64_t D, float scale, float* w, float* o) {
  const float ninf = -std::numeric_limits<float>::infinity();
  float mx = ninf;
  for (int64_t j = 0; j < S; j++) {
    if (!m[j]) {
      w[j] = ninf;
      continue;
    }
    const float* kv = kbase + j * D;
    float dot = 0.f;
    for (int64_t d = 0; d < D; d++) dot += q[d] * kv[d];
    w[j] = dot * scale;
    mx = std::max(mx, w[j]);
  }
  std::fill(o, o + D, 0.f);
  if (mx == ninf) return;  // no valid key: zeros, never NaN
  float denom = 0.f;
  for (int64_t j = 0; j < S; j++) {
    const float e = m[j] ? std::exp(w[j] - mx) : 0.f;
    w[j] = e;
    denom += e;
  }
  const float inv = 1.0f / denom;
  for (int64_t j = 0; j < S; j++) {
    if (w[j] == 0.f) continue;
    const float p = w[j] * inv;
    const float* vv = vbase + j * D;
    for (int64_t d = 0; d < D; d++) o[d] += p * vv[d];
  }
}

#if defined(__x86_64__)
#define COHORT_AVX2 __attribute__((target("avx2,fma")))

// exp for 8 floats (Cephes polynomial, as in avx_mathfun): relative error ~1e-7 on [-88, 88].
COHORT_AVX2 static inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

COHORT_AVX2 static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// AVX2 version for D a multiple of 8: vector dot products, vector exp, PV accumulated in registers.
COHORT_AVX2 static void attendOneAvx2(const float* q, const float* kbase, const float* vbase, const bool* m,
                                      int64_t S, int64_t D, float scale, float* w, float* o) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t nb = D / 8;
  float mx = ninf;
  for (int64_t j = 0; j < S; j++) {
    if (!m[j]) {
      w[j] = ninf;
      continue;
    }
    const float* kv = kbase + j * D;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t r = 0;
    for (; r + 2 <= nb; r += 2) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * r), _mm256_loadu_ps(kv + 8 * r), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * r + 8), _mm256_loadu_ps(kv + 8 * r + 8), a1);
    }
    if (r < nb) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * r), _mm256_loadu_ps(kv + 8 * r), a0);
    w[j] = hsum8(_mm256_add_ps(a0, a1)) * scale;
    mx = std::max(mx, w[j]);
  }
  std::fill(o, o + D, 0.f);
  if (mx == ninf) return;  // no valid key: zeros, never NaN
  const __m256 vmx = _mm256_set1_ps(mx);
  int64_t j = 0;
  for (; j + 8 <= S; j += 8) _mm256_storeu_ps(w + j, exp8(_mm256_sub_ps(_mm256_loadu_ps(w + j), vmx)));
  for (; j < S; j++) w[j] = std::exp(w[j] - mx);
  float denom = 0.f;
  for (j = 0; j < S; j++) {
    if (!m[j]) w[j] = 0.f;
    denom += w[j];
  }
  const float inv = 1.0f / denom;
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    const int64_t n = std::min<int64_t>(8, (D - d0) / 8);
    __m256 acc[8];
    for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
    if (n == 8) {
      for (j = 0; j < S; j++) {
        if (w[j] == 0.f) continue;
        const __m256 p = _mm256_set1_ps(w[j] * inv);
        const float* vv = vbase + j * D + d0;
        for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vv + 8 * r), acc[r]);
      }
    } else {
      for (j = 0; j < S; j++) {
        if (w[j] == 0.f) continue;
        const __m256 p = _mm256_set1_ps(w[j] * inv);
        const float* vv = vbase + j * D + d0;
        for (int64_t r = 0; r < n; r++) acc[r] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vv + 8 * r), acc[r]);
      }
    }
    for (int64_t r = 0; r < n; r++) _mm256_storeu_ps(o + d0 + 8 * r, acc[r]);
  }
}
static const bool kHaveAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

static void attendOne(const float* q, const float* kbase, const float* vbase, const bool* m, int64_t S, int64_t D,
                      float scale, float* w, float* o) {
#if defined(__x86_64__)
  if (kHaveAvx2 && D % 8 == 0) return attendOneAvx2(q, kbase, vbase, m, S, D, scale, w, o);
#endif
  attendOneScalar(q, kbase, vbase, m, S, D, scale, w, o);
}

// out [B,H,D] = softmax(q·kᵀ/√D over keys j < S with keyValid[b,j]) · v. Heads map to KV heads in groups
// of H/Hkv (the repeat_kv layout of Hugging Face).
static torch::Tensor decodeAttentionImpl(const torch::Tensor& q0, const torch::Tensor& kc, const torch::Tensor& vc,
                                         int64_t S, const torch::Tensor& valid0) {
  torch::Tensor q = q0.contiguous();
  torch::Tensor valid = valid0.scalar_type() == torch::kBool ? valid0.contiguous() : valid0.to(torch::kBool).contiguous();
  if (q.dim() != 3 || kc.dim() != 4 || vc.sizes() != kc.sizes())
    throw ArgError("decodeAttention expects q [B,H,D] and caches [B,Hkv,Smax,D] of equal shape");
  if (q.scalar_type() != torch::kFloat32 || kc.scalar_type() != torch::kFloat32 || vc.scalar_type() != torch::kFloat32 ||
      !q.device().is_cpu() || !kc.device().is_cpu())
    throw ArgError("decodeAttention is implemented for f32 CPU tensors; use attention() otherwise");
  if (!kc.is_contiguous() || !vc.is_contiguous()) throw ArgError("decodeAttention needs contiguous caches");
  const int64_t B = q.size(0), H = q.size(1), D = q.size(2);
  const int64_t Hkv = kc.size(1), Smax = kc.size(2);
  if (kc.size(0) != B || kc.size(3) != D || H % Hkv != 0 || S < 1 || S > Smax || valid.dim() != 2 ||
      valid.size(0) != B || valid.size(1) < S)
    throw ArgError("decodeAttention: inconsistent shapes (need cache batch = B, head dim = D, Hkv | H, 1 ≤ S ≤ Smax)");
  const int64_t group = H / Hkv, vstride = valid.size(1);
  torch::Tensor out = torch::empty({B, H, D}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = kc.data_ptr<float>();
  const float* vp = vc.data_ptr<float>();
  const bool* mp = valid.data_ptr<bool>();
  float* op = out.data_ptr<float>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> w(S);
    for (int64_t bh = begin; bh < end; bh++) {
      const int64_t b = bh / H, h = bh % H, kvh = h / group;
      const int64_t base = ((b * Hkv + kvh) * Smax) * D;
      attendOne(qp + bh * D, kp + base, vp + base, mp + b * vstride, S, D, scale, w.data(), op + bh * D);
    }
  });
  return out;
}

// decodeAttention(q [B,H,D], kCache [B,Hkv,Smax,D], vCache [B,Hkv,Smax,D], length S, keyValid [B,≥S] bool)
//   → [B,H,D]. f32 CPU only, no autograd (decoding).
static Napi::Value decodeAttention(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  return wrap(info.Env(), decodeAttentionImpl(unwrap(info[0], "q"), unwrap(info[1], "kCache"), unwrap(info[2], "vCache"),
                                              toInt(info[3], "length"), unwrap(info[4], "keyValid")));
}

static torch::Tensor rmsNormF(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return x * torch::rsqrt(x.pow(2).mean({-1}, true) + eps) * w;
}

static c10::optional<torch::Tensor> optTensor(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return c10::nullopt;
  return unwrap(v, "bias");
}

// x · Wᵀ (+ b) for an f32 weight, or for an int8 one (quantizeInt8) with its per-row scale.
static torch::Tensor projLinear(const torch::Tensor& x, const torch::Tensor& w, const c10::optional<torch::Tensor>& scale,
                                const c10::optional<torch::Tensor>& b = c10::nullopt) {
  if (w.scalar_type() != torch::kInt8) return torch::linear(x, w, b);
  if (!scale.has_value()) throw ArgError("decodeForward: an int8 weight needs its scale");
  return int8LinearImpl(x, w, *scale, b, 0);
}

// Splits qkv [B, (H + 2Hkv)·hd] (one token per row) into q (RoPE applied, into q [B, H, hd]) and k (RoPE
// applied) and v written straight into cache column `col` of kc/vc [B, Hkv, Smax, hd]. RoPE is HF's
// rotate_half form x·cos + [−x₂, x₁]·sin with cos/sin [B, hd].
static void ropeSplitWrite(const torch::Tensor& qkv0, const torch::Tensor& cos, const torch::Tensor& sin,
                           torch::Tensor& q, torch::Tensor& kc, torch::Tensor& vc, int64_t col) {
  if (!kc.is_contiguous() || !vc.is_contiguous() || kc.scalar_type() != torch::kFloat32 ||
      vc.scalar_type() != torch::kFloat32 || qkv0.scalar_type() != torch::kFloat32)
    throw ArgError("decodeForward needs contiguous f32 caches and f32 activations");
  torch::Tensor qkv = qkv0.contiguous();
  const int64_t B = q.size(0), H = q.size(1), hd = q.size(2), Hkv = kc.size(1), Smax = kc.size(2);
  const int64_t half = hd / 2, row = (H + 2 * Hkv) * hd;
  const float* src = qkv.data_ptr<float>();
  const float* cp = cos.data_ptr<float>();
  const float* sp = sin.data_ptr<float>();
  float* qp = q.data_ptr<float>();
  float* kp = kc.data_ptr<float>();
  float* vp = vc.data_ptr<float>();
  auto rope = [&](const float* x, const float* c, const float* s, float* out) {
    for (int64_t i = 0; i < half; i++) {
      const float a = x[i] * c[i] + (-x[i + half]) * s[i];
      const float b = x[i + half] * c[i + half] + x[i] * s[i + half];
      out[i] = a;
      out[i + half] = b;
    }
  };
  for (int64_t b = 0; b < B; b++) {
    const float* r = src + b * row;
    const float* c = cp + b * hd;
    const float* s = sp + b * hd;
    for (int64_t h = 0; h < H; h++) rope(r + h * hd, c, s, qp + (b * H + h) * hd);
    for (int64_t h = 0; h < Hkv; h++) {
      const int64_t dst = ((b * Hkv + h) * Smax + col) * hd;
      rope(r + (H + h) * hd, c, s, kp + dst);
      std::copy(r + (H + Hkv + h) * hd, r + (H + Hkv + h + 1) * hd, vp + dst);
    }
  }
}

// decodeForward(layers, globals, dims, kCaches, vCaches, keyValid, positions, tokens, col) → logits [B, V]
// One decoding step of the whole Llama stack for one token per row, in one call:
//   layers[l] = [inputNorm, Wqkv [(H+2Hkv)·hd, D], bqkv | null, Wo, postNorm, Wgateup [2F, D], Wdown]
//   globals   = [embed [V, D], finalNorm, lmHead [V, D], cos [P, hd], sin [P, hd]]
//   dims      = [H, Hkv, hd, eps]
// Int8 rollouts: any projection (and lmHead) may be int8 (quantizeInt8); its scale [N] then follows the seven
// entries of its layer as [.., sQkv, sO, sGateup, sDown] (null for f32 ones), lmHead's as globals[5].
// Writes k/v into cache column `col`, marks keyValid[:, col] and advances positions [B, 1] by one.
static Napi::Value decodeForward(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  auto layers = info[0].As<Napi::Array>();
  auto globals = unwrapList(info[1]);
  auto dims = info[2].As<Napi::Array>();
  auto kcs = unwrapList(info[3]);
  auto vcs = unwrapList(info[4]);
  torch::Tensor& keyValid = unwrap(info[5], "keyValid");
  torch::Tensor& positions = unwrap(info[6], "positions");
  const torch::Tensor& tokens = unwrap(info[7], "tokens");
  const int64_t col = toInt(info[8], "col");
  if (globals.size() != 5 && globals.size() != 6)
    throw ArgError("decodeForward: globals must be [embed, finalNorm, lmHead, cos, sin, lmHeadScale?]");
  c10::optional<torch::Tensor> headScale;
  if (globals.size() == 6) headScale = globals[5];
  const int64_t H = toInt(dims.Get(0u), "H"), Hkv = toInt(dims.Get(1u), "Hkv"), hd = toInt(dims.Get(2u), "hd");
  const double eps = toDouble(dims.Get(3u), "eps");
  const int64_t L = layers.Length();
  if (static_cast<int64_t>(kcs.size()) != L || static_cast<int64_t>(vcs.size()) != L)
    throw ArgError("decodeForward: one k and one v cache per layer");
  const int64_t B = tokens.size(0);
  for (int64_t l = 0; l < L; l++)
    if (kcs[l].dim() != 4 || kcs[l].size(0) != B || kcs[l].size(1) != Hkv || kcs[l].size(3) != hd)
      throw ArgError("decodeForward: cache " + std::to_string(l) + " is not [B, Hkv, Smax, hd] for this model and batch");
  torch::Tensor pos = positions.reshape({B});
  torch::Tensor cos = globals[3].index_select(0, pos).contiguous();  // [B, hd]
  torch::Tensor sin = globals[4].index_select(0, pos).contiguous();  // [B, hd]
  const bool plain = globals[0].scalar_type() == torch::kFloat32 && globals[0].device().is_cpu() &&
                     kcs[0].is_contiguous() && kcs[0].scalar_type() == torch::kFloat32;
  if (!plain) throw ArgError("decodeForward needs f32 CPU weights and contiguous f32 caches");
  keyValid.select(1, col).fill_(true);
  torch::Tensor x = torch::embedding(globals[0], tokens.reshape({B}));  // [B, D]
  for (int64_t l = 0; l < L; l++) {
    auto ly = layers.Get(static_cast<uint32_t>(l)).As<Napi::Array>();
    const torch::Tensor& inNorm = unwrap(ly.Get(0u), "inputNorm");
    const torch::Tensor& wqkv = unwrap(ly.Get(1u), "Wqkv");
    auto bqkv = optTensor(ly.Get(2u));
    const torch::Tensor& wo = unwrap(ly.Get(3u), "Wo");
    const torch::Tensor& postNorm = unwrap(ly.Get(4u), "postNorm");
    const torch::Tensor& wgu = unwrap(ly.Get(5u), "Wgateup");
    const torch::Tensor& wdown = unwrap(ly.Get(6u), "Wdown");
    auto sc = [&](uint32_t i) { return ly.Length() > i ? optTensor(ly.Get(i)) : c10::nullopt; };
    const auto sQkv = sc(7u), sO = sc(8u), sGu = sc(9u), sDown = sc(10u);
    torch::Tensor h = rmsNormF(x, inNorm, eps);                        // [B, D]
    torch::Tensor qkv = projLinear(h, wqkv, sQkv, bqkv);               // [B, (H + 2Hkv)·hd]
    torch::Tensor q = torch::empty({B, H, hd}, qkv.options());  // [B, H, hd]
    ropeSplitWrite(qkv, cos, sin, q, kcs[l], vcs[l], col);          // q roped; k roped and v into column col
    torch::Tensor a = decodeAttentionImpl(q, kcs[l], vcs[l], col + 1, keyValid);  // [B, H, hd]
    x = x + projLinear(a.view({B, H * hd}), wo, sO);                               // [B, D]
    torch::Tensor h2 = rmsNormF(x, postNorm, eps);                                 // [B, D]
    torch::Tensor gu = projLinear(h2, wgu, sGu);                                   // [B, 2F]
    const int64_t F = gu.size(1) / 2;
    x = x + projLinear(torch::silu(gu.narrow(1, 0, F)) * gu.narrow(1, F, F), wdown, sDown);  // [B, D]
  }
  positions.add_(1);
  return wrap(info.Env(), projLinear(rmsNormF(x, globals[1], eps), globals[2], headScale));  // [B, V]
}

// The one uniform draw in [0, 1) that sampleTokens makes per row, from the row's own CPU generator.
static double uniform01(at::Generator& g) {
  auto* gi = at::check_generator<at::CPUGeneratorImpl>(g);
  std::lock_guard<std::mutex> lock(g.mutex());
  at::uniform_real_distribution<double> uni(0.0, 1.0);
  return uni(gi);
}

static torch::Tensor drawUniforms(std::vector<at::Generator>& g) {
  torch::Tensor u = torch::empty({static_cast<int64_t>(g.size()), 1}, torch::kFloat64);
  double* up = u.data_ptr<double>();
  for (size_t b = 0; b < g.size(); b++) up[b] = uniform01(g[b]);
  return u;
}

// sampleTokens's rule in whole-tensor ops, for logits on a device (the [B, V] work stays there; only B
// uniforms go over, and B tokens and log-probs come back). Same filters, same order, same draw: the kept
// probabilities are summed in vocabulary order and the token is the first whose running sum passes u·mass.
static std::vector<torch::Tensor> sampleTokensTensor(const torch::Tensor& logits, std::vector<at::Generator>& g,
                                                     double T, int64_t topK, double topP, double minP) {
  torch::NoGradGuard ng;
  const int64_t V = logits.size(1);
  const double t = T == 0 ? 1.0 : T;
  torch::Tensor x = logits.detach().to(torch::kFloat64);
  auto mxr = x.max(-1, true);
  torch::Tensor mx = std::get<0>(mxr), arg = std::get<1>(mxr);  // first maximum, as the loop's strict '>'
  torch::Tensor e = ((x - mx) / t).exp();
  torch::Tensor sum = e.sum(-1, true);
  torch::Tensor lse = sum.log();
  if (T == 0)
    return {arg.reshape({-1}).cpu(), (-lse).reshape({-1}).to(torch::kFloat32).cpu()};
  torch::Tensor p = e / sum;
  torch::Tensor keep = torch::ones_like(p, p.options().dtype(torch::kBool));
  if (topK > 0 && topK < V) {
    torch::Tensor thr = std::get<0>(p.topk(topK, -1, true, true)).narrow(-1, topK - 1, 1);
    keep = p >= thr;
  }
  if (topP < 1.0) {
    torch::Tensor mass = (p * keep).sum(-1, true);
    auto sr = torch::sort(p, /*stable=*/true, /*dim=*/-1, /*descending=*/true);
    torch::Tensor order = std::get<1>(sr);
    torch::Tensor ks = keep.gather(-1, order);
    torch::Tensor ps = std::get<0>(sr) * ks / mass;
    torch::Tensor before = ps.cumsum(-1) - ps;  // running mass of the kept tokens ahead of each one
    keep = keep.scatter(-1, order, ks.logical_and(before < topP));
  }
  if (minP > 0) keep = keep.logical_and((p < p.gather(-1, arg) * minP).logical_not());
  torch::Tensor q = p * keep;
  torch::Tensor mass = q.sum(-1, true);
  torch::Tensor target = drawUniforms(g).to(p.device()) * mass;
  torch::Tensor hit = q.cumsum(-1) > target;
  torch::Tensor idx = torch::arange(V, x.options().dtype(torch::kInt64)).unsqueeze(0);
  torch::Tensor firstHit = hit.to(torch::kInt64).argmax(-1, true);
  // nothing passed (rounding at the top end): the last token with mass, else the most likely one
  torch::Tensor positive = q > 0;
  torch::Tensor lastKept = (idx + 1).mul(positive.to(torch::kInt64)).argmax(-1, true);
  torch::Tensor fallback = torch::where(positive.any(-1, true), lastKept, arg);
  torch::Tensor tok = torch::where(hit.any(-1, true), firstHit, fallback);
  torch::Tensor lp = (x.gather(-1, tok) - mx) / t - lse;
  return {tok.reshape({-1}).cpu(), lp.reshape({-1}).to(torch::kFloat32).cpu()};
}

// sampleTokens(logits [B,V], generators (array of B handles), temperature, topK, topP, minP[, tensorOps])
//   → [tokens i64 [B], logprobs f32 [B]] on the CPU.
// temperature 0 = greedy (logprob then under temperature 1). topK ≤ 0, topP ≥ 1 and minP ≤ 0 disable a
// filter. Order: top-k, then top-p over the renormalised survivors, then min-p relative to the most likely
// token. The reported log-prob is log softmax(logits / T)[token] over the full vocabulary. CPU logits go
// through the loop below; logits on a device (or with tensorOps) through sampleTokensTensor, the same rule.
static Napi::Value sampleTokens(const Napi::CallbackInfo& info) {
  const torch::Tensor& input = unwrap(info[0], "logits");
  if (input.dim() != 2) throw ArgError("sampleTokens expects logits [B,V]");
  const bool tensorOps = !input.device().is_cpu() || (info.Length() > 6 && toBool(info[6]));
  torch::Tensor logits = tensorOps ? input : input.detach().to(torch::kFloat64).contiguous();
  const int64_t B = logits.size(0), V = logits.size(1);
  if (!info[1].IsArray()) throw ArgError("sampleTokens expects an array of generators");
  auto gens = info[1].As<Napi::Array>();
  if (static_cast<int64_t>(gens.Length()) != B)
    throw ArgError("sampleTokens needs one generator per row: got " + std::to_string(gens.Length()) + " for " +
                   std::to_string(B) + " rows");
  std::vector<at::Generator> g;
  for (uint32_t i = 0; i < gens.Length(); i++) {
    auto o = toGenerator(gens.Get(i));
    if (!o) throw ArgError("sampleTokens: generator " + std::to_string(i) + " is missing");
    g.push_back(*o);
  }
  const double T = toDouble(info[2], "temperature");
  const int64_t topK = toInt(info[3], "topK");
  const double topP = toDouble(info[4], "topP");
  const double minP = toDouble(info[5], "minP");
  if (T < 0) throw ArgError("temperature must be ≥ 0");
  if (tensorOps) {
    auto r = sampleTokensTensor(logits, g, T, topK, topP, minP);
    return wrapList(info.Env(), {r[0], r[1]});
  }
  torch::Tensor tokens = torch::empty({B}, torch::kInt64);
  torch::Tensor lps = torch::empty({B}, torch::kFloat32);
  const double* lp = logits.data_ptr<double>();
  int64_t* tp = tokens.data_ptr<int64_t>();
  float* pp = lps.data_ptr<float>();
  std::vector<double> p(V);
  std::vector<char> keep(V);
  std::vector<int64_t> order(V);
  for (int64_t b = 0; b < B; b++) {
    const double* x = lp + b * V;
    const double t = T == 0 ? 1.0 : T;
    double mx = -std::numeric_limits<double>::infinity();
    int64_t arg = 0;
    for (int64_t i = 0; i < V; i++)
      if (x[i] > mx) mx = x[i], arg = i;
    double sum = 0;
    for (int64_t i = 0; i < V; i++) sum += (p[i] = std::exp((x[i] - mx) / t));
    const double lse = std::log(sum);  // of (x − mx)/t
    if (T == 0) {
      tp[b] = arg;
      pp[b] = static_cast<float>(-lse);
      continue;
    }
    for (int64_t i = 0; i < V; i++) p[i] /= sum;
    std::fill(keep.begin(), keep.end(), 1);
    if (topK > 0 && topK < V) {
      std::vector<double> tmp(p);
      std::nth_element(tmp.begin(), tmp.begin() + (topK - 1), tmp.end(), std::greater<double>());
      const double thr = tmp[topK - 1];
      for (int64_t i = 0; i < V; i++) keep[i] = p[i] >= thr;
    }
    if (topP < 1.0) {
      double mass = 0;
      for (int64_t i = 0; i < V; i++)
        if (keep[i]) mass += p[i];
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return p[a] > p[c]; });
      double cum = 0;
      bool reached = false;
      for (int64_t r = 0; r < V; r++) {
        int64_t i = order[r];
        if (!keep[i]) continue;
        if (reached) keep[i] = 0;
        else {
          cum += p[i] / mass;
          if (cum >= topP) reached = true;
        }
      }
    }
    if (minP > 0) {
      const double pmax = p[arg];
      for (int64_t i = 0; i < V; i++)
        if (p[i] < minP * pmax) keep[i] = 0;
    }
    double mass = 0;
    for (int64_t i = 0; i < V; i++)
      if (keep[i]) mass += p[i];
    const double u = uniform01(g[b]);
    double target = u * mass, cum = 0;
    int64_t tok = -1, last = -1;
    for (int64_t i = 0; i < V; i++) {
      if (!keep[i] || p[i] == 0) continue;
      last = i;
      cum += p[i];
      if (cum > target) {
        tok = i;
        break;
      }
    }
    if (tok < 0) tok = last >= 0 ? last : arg;
    tp[b] = tok;
    pp[b] = static_cast<float>((x[tok] - mx) / t - lse);
  }
  return wrapList(info.Env(), {tokens, lps});
}

// ---- lm_head + log-probs with recomputation --------------------------------------------------------
//
// lp[m] = log softmax(h[m]·Wᵀ / T)[target[m]] and entropy[m] of that distribution, for M rows, computed
// over chunks of rows. Only one chunk's [rows, V] logits exist at a time, in the forward AND the backward:
// the backward recomputes each chunk's logits instead of keeping all M·V of them for autograd.
//   ∂lp/∂z = onehot(target) − p,   ∂H/∂z = −p·(log p + H),   z = logits / T.
struct LinearLogprobs : public torch::autograd::Function<LinearLogprobs> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h,
                                                const torch::Tensor& w, const torch::Tensor& targets, double T,
                                                bool withEnt, int64_t chunk) {
    const int64_t M = h.size(0);
    torch::Tensor lp = torch::empty({M}, h.options());
    torch::Tensor ent = torch::empty({withEnt ? M : 0}, h.options());
    {
      at::NoGradGuard ng;
      for (int64_t r = 0; r < M; r += chunk) {
        const int64_t n = std::min(chunk, M - r);
        torch::Tensor z = torch::matmul(h.narrow(0, r, n), w.t());  // [n, V]
        if (T != 1.0) z.div_(T);
        torch::Tensor lse = torch::logsumexp(z, {-1}, false);       // [n]
        lp.narrow(0, r, n).copy_(z.gather(-1, targets.narrow(0, r, n).unsqueeze(-1)).squeeze(-1) - lse);
        if (withEnt) ent.narrow(0, r, n).copy_(lse - (torch::softmax(z, -1) * z).sum(-1));
      }
    }
    ctx->save_for_backward({h, w, targets, ent});
    ctx->saved_data["T"] = T;
    ctx->saved_data["withEnt"] = withEnt;
    ctx->saved_data["chunk"] = chunk;
    if (!withEnt) ctx->mark_non_differentiable({ent});
    return {lp, ent};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& h = saved[0];
    const torch::Tensor& w = saved[1];
    const torch::Tensor& targets = saved[2];
    const torch::Tensor& ent = saved[3];
    const double T = ctx->saved_data["T"].toDouble();
    const bool withEnt = ctx->saved_data["withEnt"].toBool();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    torch::Tensor gLp = grads[0];
    torch::Tensor gEnt = withEnt ? grads[1] : torch::Tensor();
    const bool needH = ctx->needs_input_grad(0), needW = ctx->needs_input_grad(1);
    const int64_t M = h.size(0);
    torch::Tensor dh = needH ? torch::zeros_like(h) : torch::Tensor();
    torch::Tensor dw = needW ? torch::zeros_like(w) : torch::Tensor();
    for (int64_t r = 0; r < M; r += chunk) {
      const int64_t n = std::min(chunk, M - r);
      torch::Tensor hc = h.narrow(0, r, n);
      torch::Tensor z = torch::matmul(hc, w.t());  // [n, V]
      if (T != 1.0) z.div_(T);
      torch::Tensor logp = torch::log_softmax(z, -1);  // [n, V]
      torch::Tensor p = logp.exp();
      torch::Tensor g = torch::zeros_like(z);  // dL/dz
      if (gLp.defined()) {
        torch::Tensor gl = gLp.narrow(0, r, n).unsqueeze(-1);  // [n, 1]
        g.sub_(p * gl);
        g.scatter_add_(-1, targets.narrow(0, r, n).unsqueeze(-1), gl);
      }
      if (withEnt && gEnt.defined()) {
        torch::Tensor ge = gEnt.narrow(0, r, n).unsqueeze(-1);  // [n, 1]
        g.sub_(p * (logp + ent.narrow(0, r, n).unsqueeze(-1)) * ge);
      }
      if (T != 1.0) g.div_(T);
      if (needH) dh.narrow(0, r, n).copy_(torch::matmul(g, w));
      if (needW) dw.add_(torch::matmul(g.t(), hc));
    }
    return {dh, dw, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// linearTokenLogprobs(h [M, D], w [V, D], targets [M] i64, temperature, withEntropy, chunkRows)
//   → [lp [M], entropy [M]] (entropy empty unless asked). Differentiable in h and w.
static Napi::Value linearTokenLogprobs(const Napi::CallbackInfo& info) {
  const torch::Tensor& h = unwrap(info[0], "hidden");
  const torch::Tensor& w = unwrap(info[1], "weight");
  const torch::Tensor& targets = unwrap(info[2], "targets");
  const double T = toDouble(info[3], "temperature");
  const bool withEnt = toBool(info[4]);
  const int64_t chunk = toInt(info[5], "chunkRows");
  if (h.dim() != 2 || w.dim() != 2 || h.size(1) != w.size(1) || targets.dim() != 1 || targets.size(0) != h.size(0))
    throw ArgError("linearTokenLogprobs expects hidden [M, D], weight [V, D] and targets [M]");
  if (targets.scalar_type() != torch::kInt64) throw ArgError("linearTokenLogprobs: targets must be i64 token ids");
  if (!(T > 0) || chunk < 1) throw ArgError("linearTokenLogprobs: temperature must be > 0 and chunkRows ≥ 1");
  auto out = LinearLogprobs::apply(h, w, targets, T, withEnt, chunk);
  if (!withEnt) return wrapList(info.Env(), {out[0]});
  return wrapList(info.Env(), {out[0], out[1]});
}

void registerModelOps(Napi::Env env, Napi::Object exports) {
  COHORT_EXPORT(exports, "decodeAttention", decodeAttention);
  COHORT_EXPORT(exports, "sampleTokens", sampleTokens);
  COHORT_EXPORT(exports, "decodeForward", decodeForward);
  COHORT_EXPORT(exports, "linearTokenLogprobs", linearTokenLogprobs);
}

}  // namespace cohort
