// The PNG encoder (signature, chunk CRCs, IDAT size) and the raster: a plotted point comes out in
// the line's colour at the pixel the chart layout maps it to.
#include <gtest/gtest.h>

#include "plot/canvas.h"
#include "plot/chart.h"
#include "plot/figure.h"
#include "plot/png.h"
#include "png_reader.h"

using namespace agpt;
using namespace agpt::plot;

namespace {

constexpr Rgb kRed{200, 30, 60}, kWhite{255, 255, 255};

// A line that is flat from x=0 to x=50 (at y=1), then climbs to (100, 3); a marker at (75, 2.5).
Chart known_chart() {
  Chart c;
  c.title = "known";
  c.y_label = "value";
  c.series.push_back({"line", {{0, 50, 100}, {1, 1, 3}}, kRed, Mark::kLine, 2});
  c.series.push_back({"marker", {{75}, {2.5}}, {20, 90, 200}, Mark::kMarkers, 1, 3});
  return c;
}

// True when some pixel within `r` of (x, y) has exactly colour c.
bool colour_near(const agpt::testing::DecodedPng& png, double x, double y, Rgb c, int r = 0) {
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx)
      if (png.pixel(static_cast<int>(x) + dx, static_cast<int>(y) + dy) == c) return true;
  return false;
}

}  // namespace

TEST(Png, SignatureChunksCrcAndSize) {
  Canvas canvas(37, 11);
  canvas.polyline({{2, 2}, {30, 9}}, 2, kRed);
  canvas.fill_rect({0, 0, 3, 3}, {1, 2, 3});
  const std::string png = encode_png(canvas);
  const agpt::testing::DecodedPng d = agpt::testing::decode_png(png);
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(d.width, 37u);
  EXPECT_EQ(d.height, 11u);
  EXPECT_EQ(d.inflated_size, 11u * (1 + 3 * 37));
  EXPECT_EQ(d.chunk_types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(d.rgb, canvas.rgb());  // the pixels survive the round trip
  EXPECT_EQ(d.pixel(1, 1), (Rgb{1, 2, 3}));
}

TEST(Png, ReaderCatchesACorruptedByte) {  // the check above can fail
  Canvas canvas(8, 8);
  std::string png = encode_png(canvas);
  png[png.size() / 2] ^= 0x40;
  EXPECT_NE(agpt::testing::decode_png(png).error, "");
}

TEST(Png, PlottedPointIsTheLineColour) {
  const Chart chart = known_chart();
  const Figure fig = single_chart(chart, 600, 400);
  const agpt::testing::DecodedPng d = agpt::testing::decode_png(figure_png(fig));
  ASSERT_EQ(d.error, "");
  const ChartLayout L = layout_chart(chart, fig.panels[0].area);
  // On the flat part the line's centre is within half a pixel of the pixel centre: full colour.
  EXPECT_EQ(d.pixel(static_cast<int>(L.x.to_pixel(25)), static_cast<int>(L.y.to_pixel(1))), kRed);
  EXPECT_TRUE(colour_near(d, L.x.to_pixel(50), L.y.to_pixel(1), kRed, 1));   // a vertex
  EXPECT_TRUE(colour_near(d, L.x.to_pixel(100), L.y.to_pixel(3), kRed, 1));  // the last point
  EXPECT_EQ(d.pixel(static_cast<int>(L.x.to_pixel(75)), static_cast<int>(L.y.to_pixel(2.5))), (Rgb{20, 90, 200}));
  // Well away from the line (above the flat part, between gridlines) the plot stays white.
  EXPECT_EQ(d.pixel(static_cast<int>(L.x.to_pixel(12)), static_cast<int>(L.y.to_pixel(1.35))), kWhite);
  EXPECT_EQ(d.pixel(0, 0), kWhite);
}

TEST(Png, ASinglePointIsAVisibleDot) {
  Chart c;
  c.series.push_back({"", {{7}, {5.5}}, kRed, Mark::kLine, 2});
  Canvas canvas(500, 300);
  draw_chart(c, {0, 0, 500, 300}, canvas);
  const ChartLayout L = layout_chart(c, {0, 0, 500, 300});
  const int x = static_cast<int>(L.x.to_pixel(7)), y = static_cast<int>(L.y.to_pixel(5.5));
  for (int d = -1; d <= 1; ++d) {
    EXPECT_EQ(canvas.pixel(x + d, y), kRed);
    EXPECT_EQ(canvas.pixel(x, y + d), kRed);
  }
}

TEST(Png, LinesAreAtLeastTwoPixelsWide) {
  Canvas canvas(40, 40);
  canvas.polyline({{5, 20}, {35, 20}}, 2, kRed);  // centre on a pixel edge: rows 19 and 20
  EXPECT_EQ(canvas.pixel(20, 19), kRed);
  EXPECT_EQ(canvas.pixel(20, 20), kRed);
  EXPECT_EQ(canvas.pixel(20, 22), kWhite);
}

TEST(Png, SameFigureSameBytes) {
  const Figure fig = single_chart(known_chart(), 500, 300);
  EXPECT_EQ(figure_png(fig), figure_png(fig));
  EXPECT_EQ(figure_svg(fig), figure_svg(fig));
}
