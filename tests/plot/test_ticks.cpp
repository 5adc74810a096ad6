// Nice tick values (1, 2, 5 x 10^k), log ticks and labels.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "plot/ticks.h"

using namespace agpt::plot;

namespace {

// The mantissa of a positive step: 1, 2 or 5 for a nice one.
double mantissa(double step) { return step / std::pow(10.0, std::floor(std::log10(step) + 1e-9)); }

// Equal up to rounding in the last bits (powers of ten are not exact in binary).
void expect_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], std::fabs(want[i]) * 1e-12) << i;
}

}  // namespace

TEST(Ticks, NiceStep) {
  EXPECT_DOUBLE_EQ(nice_step(10, 5), 2);
  EXPECT_DOUBLE_EQ(nice_step(7.3, 5), 2);
  EXPECT_DOUBLE_EQ(nice_step(1, 5), 0.2);
  EXPECT_DOUBLE_EQ(nice_step(30000, 6), 5000);
  EXPECT_NEAR(nice_step(3e-4, 6), 5e-5, 1e-18);
  EXPECT_DOUBLE_EQ(nice_step(0, 5), 1);  // degenerate: no crash
}

TEST(Ticks, NiceTicksKnownRanges) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(2.13, 9.04, 5), (std::vector<double>{4, 6, 8}));
  EXPECT_EQ(nice_ticks(-1, 1, 4), (std::vector<double>{-1, -0.5, 0, 0.5, 1}));
  EXPECT_EQ(nice_ticks(1, 150, 7), (std::vector<double>{50, 100, 150}));
}

TEST(Ticks, RandomRangesGiveNiceInRangeTicks) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exp(-8, 8), frac(0, 1);
  for (int i = 0; i < 2000; ++i) {
    const double mag = std::pow(10.0, exp(rng));
    const double lo = (frac(rng) - 0.5) * 4 * mag, hi = lo + (0.01 + frac(rng)) * mag;
    const int target = 2 + i % 9;
    const std::vector<double> t = nice_ticks(lo, hi, target);
    ASSERT_GE(t.size(), 2u) << lo << " " << hi << " " << target;
    // At most target + 1, except where a short range needed a finer step: the coarser rung of the
    // 1-2-5 ladder held < 2 ticks, so the finer one (at most 2.5x finer) holds at most 5.
    ASSERT_LE(t.size(), std::max<size_t>(target + 1, 5)) << lo << " " << hi;
    const double step = t[1] - t[0];
    const double m = mantissa(step);
    EXPECT_TRUE(std::fabs(m - 1) < 1e-6 || std::fabs(m - 2) < 1e-6 || std::fabs(m - 5) < 1e-6) << step;
    for (double v : t) {
      EXPECT_GE(v, lo - step * 1e-6);
      EXPECT_LE(v, hi + step * 1e-6);
      EXPECT_NEAR(v / step, std::round(v / step), 1e-6);  // a multiple of the step
    }
  }
}

TEST(Ticks, LogTicks) {
  bool linear = true;
  expect_ticks(log_ticks(1e-3, 10, 6, &linear), {1e-3, 1e-2, 1e-1, 1, 10});
  EXPECT_FALSE(linear);
  expect_ticks(log_ticks(1, 100, 8), {1, 2, 5, 10, 20, 50, 100});
  expect_ticks(log_ticks(1e-6, 1e6, 4), {1e-6, 1e-3, 1, 1e3, 1e6});  // every 3rd decade
  expect_ticks(log_ticks(2.1, 9, 5, &linear), {4, 6, 8});              // too narrow: linear ones
  EXPECT_TRUE(linear);
}

TEST(Ticks, Labels) {
  EXPECT_EQ(format_tick(2.5, 0.5, 10), "2.5");
  EXPECT_EQ(format_tick(3, 0.5, 10), "3.0");
  EXPECT_EQ(format_tick(8, 2, 10), "8");
  EXPECT_EQ(format_tick(0.05, 0.05, 0.3), "0.05");
  EXPECT_EQ(format_tick(0.30000000000000004, 0.1, 1), "0.3");
  EXPECT_EQ(format_tick(5.551115123125783e-17, 0.1, 1), "0");
  EXPECT_EQ(format_tick(15000, 5000, 30000), "15k");
  EXPECT_EQ(format_tick(12500, 500, 30000), "12.5k");
  EXPECT_EQ(format_tick(0.75, 0.25, 1), "0.75");  // not a nice step, but its multiples are still exact
  EXPECT_EQ(format_tick(1.5e6, 5e5, 3e6), "1.5M");
  EXPECT_EQ(format_tick(2.5e-4, 5e-5, 3e-4), "2.5e-4");
  EXPECT_EQ(format_tick(1e-4, 5e-5, 3e-4), "1e-4");
  EXPECT_EQ(format_tick(-2e-4, 1e-4, 3e-4), "-2e-4");
  EXPECT_EQ(format_tick(1e-5, 1e-5, 1e-5), "1e-5");  // log axis: each tick alone
  EXPECT_EQ(format_tick(100, 100, 100), "100");
}
