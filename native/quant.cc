// Int8 weight-only quantization for rollouts. Registered by registerQuantOps.
//
// quantizeInt8: per-output-channel symmetric quantization of a weight W [N, K]:
//   scale[n] = max_k |W[n, k]| / 127 (1 where the row is all zero), q[n, k] = round(W[n, k] / scale[n]) ∈ [-127, 127].
// int8Linear: y [M, N] = x [M, K] · (q · scale)ᵀ (+ bias), activations and accumulation in fp32. Two ways:
//   "kernel": a loop over output channels in panels of 4 rows: each panel is widened to fp32 once (into an L1-sized
//     scratch), then every input row is dotted against it, 2 rows at a time. The weights are read from memory
//     once per call whatever M is: a quarter of the fp32 bytes, which is what bounds decoding. Plain C++ that the
//     compiler vectorises; an AVX2/FMA path when the CPU has it.
//   "torch": widen the whole matrix to fp32 with libtorch ops and call sgemm: better for large M (prefill), where
//     compute, not weight bytes, bounds the time.
//   "auto" (what the model uses): kernel for M ≤ 32 rows, torch above.
#include <ATen/Parallel.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace cohort {

std::vector<torch::Tensor> quantizeInt8Impl(const torch::Tensor& w0) {
  if (w0.dim() != 2 || !w0.is_floating_point()) throw ArgError("quantizeInt8 expects a floating-point weight [N, K]");
  torch::Tensor w = w0.detach().to(torch::kFloat32).contiguous();
  torch::Tensor amax = w.abs().amax({1});                                             // [N]
  torch::Tensor scale = torch::where(amax > 0, amax / 127.0, torch::ones_like(amax));  // [N]
  torch::Tensor q = torch::round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8).contiguous();
  return {q, scale.contiguous()};
}

static constexpr int64_t kPanel = 4;

// acc[m][r] over k of x[m, k] · p[r, k] for the panel p [rows ≤ 4, K] (fp32 scratch).
static inline void dotPanelScalar(const float* x, int64_t K, const float* p, int64_t rows, float* out) {
  for (int64_t r = 0; r < rows; r++) {
    const float* pr = p + r * K;
    float a = 0.f;
    for (int64_t k = 0; k < K; k++) a += x[k] * pr[k];
    out[r] = a;
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

// q [rows, K] int8 → p [rows, K] fp32 (unscaled).
__attribute__((target("avx2,fma"))) static void widenAvx2(const int8_t* q, int64_t n, float* p) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i));
    _mm256_storeu_ps(p + i, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)));
    _mm256_storeu_ps(p + i + 8, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))));
  }
  for (; i < n; i++) p[i] = static_cast<float>(q[i]);
}

// Two input rows x0, x1 against a full panel of 4 rows (K % 8 == 0): 8 accumulators.
__attribute__((target("avx2,fma"))) static void dot2x4Avx2(const float* x0, const float* x1, int64_t K, const float* p,
                                                           float* o0, float* o1) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  for (int64_t k = 0; k < K; k += 8) {
    const __m256 v0 = _mm256_loadu_ps(x0 + k), v1 = _mm256_loadu_ps(x1 + k);
    const __m256 p0 = _mm256_loadu_ps(p + k), p1 = _mm256_loadu_ps(p + K + k);
    const __m256 p2 = _mm256_loadu_ps(p + 2 * K + k), p3 = _mm256_loadu_ps(p + 3 * K + k);
    a00 = _mm256_fmadd_ps(v0, p0, a00);
    a01 = _mm256_fmadd_ps(v0, p1, a01);
    a02 = _mm256_fmadd_ps(v0, p2, a02);
    a03 = _mm256_fmadd_ps(v0, p3, a03);
    a10 = _mm256_fmadd_ps(v1, p0, a10);
    a11 = _mm256_fmadd_ps(v1, p1, a11);
    a12 = _mm256_fmadd_ps(v1, p2, a12);
    a13 = _mm256_fmadd_ps(v1, p3, a13);
  }
  o0[0] = hsum256(a00), o0[1] = hsum256(a01), o0[2] = hsum256(a02), o0[3] = hsum256(a03);
  o1[0] = hsum256(a10), o1[1] = hsum256(a11), o1[2] = hsum256(a12), o1[3] = hsum256(a13);
}

__attribute__((target("avx2,fma"))) static void dot1x4Avx2(const float* x0, int64_t K, const float* p, float* o0) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t k = 0; k < K; k += 8) {
    const __m256 v0 = _mm256_loadu_ps(x0 + k);
    a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(p + k), a0);
    a1 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(p + K + k), a1);
    a2 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(p + 2 * K + k), a2);
    a3 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(p + 3 * K + k), a3);
  }
  o0[0] = hsum256(a0), o0[1] = hsum256(a1), o0[2] = hsum256(a2), o0[3] = hsum256(a3);
}
static const bool kQuantAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

static torch::Tensor int8LinearKernel(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& s) {
  const int64_t M = x.size(0), K = x.size(1), N = q.size(0);
  torch::Tensor y = torch::empty({M, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const int8_t* qp = q.data_ptr<int8_t>();
  const float* sp = s.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t panels = (N + kPanel - 1) / kPanel;
  at::parallel_for(0, panels, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> panel(kPanel * K);
    float o0[kPanel], o1[kPanel];
    for (int64_t pi = begin; pi < end; pi++) {
      const int64_t n0 = pi * kPanel, rows = std::min(kPanel, N - n0);
      float* p = panel.data();
      bool widened = false, vec = false;
#if defined(__x86_64__)
      if (kQuantAvx2) {
        widenAvx2(qp + n0 * K, rows * K, p);
        widened = true;
        vec = K % 8 == 0 && rows == kPanel;
      }
#endif
      if (!widened)
        for (int64_t i = 0; i < rows * K; i++) p[i] = static_cast<float>(qp[n0 * K + i]);
      int64_t m = 0;
#if defined(__x86_64__)
      if (vec) {
        for (; m + 2 <= M; m += 2) {
          dot2x4Avx2(xp + m * K, xp + (m + 1) * K, K, p, o0, o1);
          for (int64_t r = 0; r < kPanel; r++) {
            yp[m * N + n0 + r] = o0[r] * sp[n0 + r];
            yp[(m + 1) * N + n0 + r] = o1[r] * sp[n0 + r];
          }
        }
        for (; m < M; m++) {
          dot1x4Avx2(xp + m * K, K, p, o0);
          for (int64_t r = 0; r < kPanel; r++) yp[m * N + n0 + r] = o0[r] * sp[n0 + r];
        }
      }
#endif
      for (; m < M; m++) {
        dotPanelScalar(xp + m * K, K, p, rows, o0);
        for (int64_t r = 0; r < rows; r++) yp[m * N + n0 + r] = o0[r] * sp[n0 + r];
      }
    }
  });
  return y;
}

// mode: 0 auto, 1 kernel, 2 torch. x [..., K] → [..., N].
torch::Tensor int8LinearImpl(const torch::Tensor& x0, const torch::Tensor& q, const torch::Tensor& s,
                             const c10::optional<torch::Tensor>& bias, int mode) {
  if (q.dim() != 2 || q.scalar_type() != torch::kInt8 || s.dim() != 1 || s.size(0) != q.size(0) ||
      s.scalar_type() != torch::kFloat32)
    throw ArgError("int8Linear expects q [N, K] int8 and scale [N] f32 (from quantizeInt8)");
  if (x0.scalar_type() != torch::kFloat32 || x0.dim() < 1 || x0.size(-1) != q.size(1))
    throw ArgError("int8Linear expects f32 activations [..., K] with K = q's columns");
  if (!x0.device().is_cpu() || !q.device().is_cpu()) throw ArgError("int8Linear runs on the CPU only");
  if (!q.is_contiguous() || !s.is_contiguous()) throw ArgError("int8Linear needs contiguous q and scale");
  const int64_t K = q.size(1), N = q.size(0);
  auto outShape = x0.sizes().vec();
  outShape.back() = N;
  torch::Tensor x = x0.reshape({-1, K}).contiguous();
  const int64_t M = x.size(0);
  const bool useTorch = mode == 2 || (mode == 0 && M > 32);
  torch::Tensor y = useTorch ? torch::linear(x, q.to(torch::kFloat32) * s.unsqueeze(1)) : int8LinearKernel(x, q, s);
  if (bias.has_value()) y.add_(*bias);
  return y.view(outShape);
}

// quantizeInt8(w [N, K]) → [q [N, K] int8, scale [N] f32]
static Napi::Value quantizeInt8(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  return wrapList(info.Env(), quantizeInt8Impl(unwrap(info[0], "weight")));
}

// int8Linear(x [..., K] f32, q [N, K] int8, scale [N] f32, bias [N] | null, mode "auto" | "kernel" | "torch")
//   → [..., N]. No autograd (rollouts only).
static Napi::Value int8Linear(const Napi::CallbackInfo& info) {
  at::NoGradGuard ng;
  std::string m = info.Length() > 4 && info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "auto";
  const int mode = m == "auto" ? 0 : m == "kernel" ? 1 : m == "torch" ? 2 : -1;
  if (mode < 0) throw ArgError("int8Linear: mode must be auto, kernel or torch, got " + m);
  c10::optional<torch::Tensor> b;
  if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) b = unwrap(info[3], "bias");
  return wrap(info.Env(), int8LinearImpl(unwrap(info[0], "x"), unwrap(info[1], "q"), unwrap(info[2], "scale"), b, mode));
}

void registerQuantOps(Napi::Env env, Napi::Object exports) {
  COHORT_EXPORT(exports, "quantizeInt8", quantizeInt8);
  COHORT_EXPORT(exports, "int8Linear", int8Linear);
}

}  // namespace cohort
