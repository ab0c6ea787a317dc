// Linear algebra over batches of matrices. Registered by registerLinalgOps.
//
// svd(A [..., m, n], fullMatrices) → [U [..., m, k], S [..., k], Vh [..., k, n]] with k = min(m, n) (reduced) or
//   U [..., m, m], Vh [..., n, n] (full): torch::linalg_svd, one decomposition per leading index, singular values
//   in descending order, A = U diag(S) Vh. Differentiable where the singular values are distinct.
// svdvals(A [..., m, n]) → S [..., k]: the singular values alone (no vectors; cheaper).
// Both refuse non-floating, empty or non-finite inputs with an error that names the op and the shapes.
#include "common.h"

namespace cohort {

static void checkMatrices(const torch::Tensor& a, const char* op) {
  if (a.dim() < 2)
    throw ArgError(std::string(op) + " needs a batch of matrices [..., m, n] (at least 2 dims), got " +
                   std::to_string(a.dim()) + " dim(s)");
  if (!at::isFloatingType(a.scalar_type()) || a.scalar_type() == torch::kHalf || a.scalar_type() == torch::kBFloat16)
    throw ArgError(std::string(op) + " needs f32 or f64 matrices, got " + std::string(c10::toString(a.scalar_type())));
  if (a.size(-1) == 0 || a.size(-2) == 0) throw ArgError(std::string(op) + " needs non-empty matrices");
  if (!torch::isfinite(a).all().item<bool>())
    throw ArgError(std::string(op) + " needs finite values (the input holds NaN or Inf)");
}

// svd(A, fullMatrices = false) → [U, S, Vh]
static Napi::Value svd(const Napi::CallbackInfo& info) {
  const torch::Tensor& a = unwrap(info[0], "A");
  checkMatrices(a, "svd");
  const bool full = info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull() && toBool(info[1]);
  auto r = torch::linalg_svd(a, full);
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r), std::get<2>(r)});
}

// svdvals(A) → S
static Napi::Value svdvals(const Napi::CallbackInfo& info) {
  const torch::Tensor& a = unwrap(info[0], "A");
  checkMatrices(a, "svdvals");
  return wrap(info.Env(), torch::linalg_svdvals(a));
}

void registerLinalgOps(Napi::Env env, Napi::Object exports) {
  COHORT_EXPORT(exports, "svd", svd);
  COHORT_EXPORT(exports, "svdvals", svdvals);
}

}  // namespace cohort
