#include "dataset/numpy_math.h"

#include <cmath>

namespace agpt::dataset {
namespace {

double pairwise(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

}  // namespace

double numpy_sum(const double* a, size_t n) { return 0.0 + pairwise(a, n); }

std::vector<double> numpy_normalize(const std::vector<double>& w) {
  const double sum = numpy_sum(w.data(), w.size());
  std::vector<double> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = w[i] / sum;
  return out;
}

double python_round(double x) {
  if (!std::isfinite(x) || std::fabs(x) >= 4503599627370496.0) return x;  // already an integer (2^52)
  const double f = std::floor(x), d = x - f;  // exact below 2^52
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0 ? f : f + 1;  // a tie: to the even neighbour
}

}  // namespace agpt::dataset
