// EMA smoothing and min/max-preserving decimation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "plot/series.h"

using namespace agpt::plot;

TEST(Series, EmaIsBiasCorrected) {
  EXPECT_EQ(ema({5, 5, 5}, 0.9), (std::vector<double>{5, 5, 5}));  // starts at the data, not at 0
  EXPECT_EQ(ema({1, 2, 3}, 0), (std::vector<double>{1, 2, 3}));
  const std::vector<double> e = ema({0, 1}, 0.5);
  EXPECT_DOUBLE_EQ(e[0], 0);
  EXPECT_DOUBLE_EQ(e[1], 0.5 / 0.75);
}

TEST(Series, EmaOfAConstantIsExactlyConstant) {  // rounding drift would show as noise on a zoomed axis
  const std::vector<double> flat(500, 4.1);
  EXPECT_EQ(ema(flat, 0.9), flat);
  EXPECT_EQ(ema(flat, 0.999), flat);
}

TEST(Series, EmaKeepsGaps) {
  const std::vector<double> e = ema({1, NAN, 1, 3}, 0.5);
  EXPECT_EQ(e[0], 1);
  EXPECT_TRUE(std::isnan(e[1]));
  EXPECT_EQ(e[2], 1);
  EXPECT_GT(e[3], 1);
  EXPECT_LT(e[3], 3);
}

TEST(Series, ShortSeriesUnchanged) {
  XY s{{1, 2, 3}, {4, 5, 6}};
  const XY d = decimate(s, 4000);
  EXPECT_EQ(d.x, s.x);
  EXPECT_EQ(d.y, s.y);
}

TEST(Series, DecimationKeepsExtremesEndsAndGaps) {
  XY s;
  for (int i = 0; i < 100000; ++i) s.x.push_back(i + 1), s.y.push_back(std::sin(i * 0.001) + 0.001 * (i % 7));
  s.y[31337] = 50;     // a spike
  s.y[77777] = -50;    // a dip
  s.y[55555] = NAN;    // a gap
  const XY d = decimate(s, 4000);
  ASSERT_LE(d.size(), 4000u);
  ASSERT_GE(d.size(), 1000u);
  EXPECT_EQ(d.x.front(), 1);
  EXPECT_EQ(d.x.back(), 100000);
  EXPECT_TRUE(std::is_sorted(d.x.begin(), d.x.end()));
  EXPECT_NE(std::find(d.y.begin(), d.y.end(), 50.0), d.y.end());
  EXPECT_NE(std::find(d.y.begin(), d.y.end(), -50.0), d.y.end());
  EXPECT_EQ(std::count_if(d.y.begin(), d.y.end(), [](double v) { return std::isnan(v); }), 1);
}
