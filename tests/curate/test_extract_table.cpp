// Structured data to narrative text: CSV/TSV and JSON records, units from headers, the default
// sentence, user templates, and bad rows counted with their line.
#include <gtest/gtest.h>

#include <fstream>

#include "base/error.h"
#include "curate/extract/narrative.h"
#include "curate/extract/table.h"

namespace agpt::curate::extract {
namespace {

TEST(ExtractTable, ParsesQuotedCsvAndCountsBadRows) {
  Table t = parse_delimited(
      "material,density (g/cm3),note\n"
      "iron,7.87,\"a \"\"common\"\" metal, magnetic\"\n"
      "\n"
      "copper,8.96\n"
      "\"gold\",19.3,\"multi\nline\"\n"
      "lead,11.3,x,extra\n",
      ',');
  ASSERT_TRUE(t.failure.empty());
  EXPECT_EQ(t.columns, (std::vector<std::string>{"material", "density (g/cm3)", "note"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].values[2], "a \"common\" metal, magnetic");
  EXPECT_EQ(t.rows[1].values[0], "gold");
  EXPECT_EQ(t.rows[1].values[2], "multi\nline");
  EXPECT_EQ(t.rows[1].line, 5u);
  EXPECT_EQ(t.bad_rows, 2u);
  ASSERT_EQ(t.errors.size(), 2u);
  EXPECT_EQ(t.errors[0], "line 4: expected 3 fields (as the header), found 2");
  EXPECT_EQ(t.errors[1], "line 7: expected 3 fields (as the header), found 4");
}

TEST(ExtractTable, TsvEmptyAndBrokenFiles) {
  Table t = parse_delimited("a\tb\n1\t2\n", '\t');
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].values[1], "2");
  EXPECT_FALSE(parse_delimited("", ',').failure.empty());
  Table q = parse_delimited("a,b\n1,\"never closed\n2,3\n", ',');
  EXPECT_EQ(q.bad_rows, 1u);
  EXPECT_NE(q.errors[0].find("line 2: unclosed quote"), std::string::npos);
  Table u = parse_delimited("a,b\n\xFF,1\n", ',');
  EXPECT_EQ(u.errors[0], "line 2: not valid UTF-8");
}

TEST(ExtractTable, JsonRecordsFlattenAndCountBadLines) {
  Table t = parse_json_records(
      "{\"name\":\"iron\",\"props\":{\"density\":7.87},\"tags\":[\"metal\",\"bcc\"]}\n"
      "not json\n"
      "[1,2]\n"
      "{\"name\":\"copper\",\"extra\":null,\"ok\":true}\n",
      true);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"name", "props.density", "tags", "ok"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].values, (std::vector<std::string>{"iron", "7.87", "metal, bcc", ""}));
  EXPECT_EQ(t.rows[1].values, (std::vector<std::string>{"copper", "", "", "true"}));
  EXPECT_EQ(t.errors, (std::vector<std::string>{"line 2: invalid JSON", "line 3: not a JSON object"}));
  Table a = parse_json_records("[{\"x\":1},{\"x\":2}, 3]", false);
  EXPECT_EQ(a.rows.size(), 2u);
  EXPECT_EQ(a.errors[0], "record 3: record is not a JSON object");
  EXPECT_FALSE(parse_json_records("{broken", false).failure.empty());
}

TEST(Narrative, UnitsFromHeaders) {
  EXPECT_EQ(split_unit("density (g/cm3)").unit, "g/cm3");
  EXPECT_EQ(split_unit("density [g/cm^3]").unit, "g/cm^3");
  EXPECT_EQ(split_unit("density [g/cm^3]").name, "density");
  EXPECT_EQ(split_unit("plain").unit, "");
  EXPECT_EQ(split_unit("(odd)").name, "(odd)");
}

TEST(Narrative, DefaultSentence) {
  NarrativeTemplate def;
  Narrator n(def, {"material", "density (g/cm3)", "melting_point [°C]", "elongation (%)", "structure"});
  EXPECT_EQ(n.render({"Iron", "7.87", "1538", "40", "bcc"}),
            "Iron has a density of 7.87 g/cm3, a melting point of 1538 °C, an elongation of 40% and a structure of "
            "bcc.");
  EXPECT_EQ(n.render({"Tin", "", "232", "", ""}), "Tin has a melting point of 232 °C.");
  Narrator angle(def, {"line", "angle (°)"});
  EXPECT_EQ(angle.render({"L1", "30"}), "L1 has an angle of 30°.");
  Narrator ids(def, {"sample", "mass (g)"});
  EXPECT_EQ(ids.render({"17", "2.5"}), "Sample 17 has a mass of 2.5 g.");
}

TEST(Narrative, UserTemplate) {
  NarrativeTemplate t = parse_template(
      "# comment\nkey: material\nunit density: g/cm³\nformat density: %.1f\nformat melting_point: %d\n"
      "name melting_point: melting point\n---\n{{material}} has a density of {{density}}.\n"
      "It melts at {{melting_point:value}} {{melting_point:unit}} ({{melting_point:name}}).\n"
      "Note: {{note}}\n\nSource: table 1.\n",
      "t.tmpl");
  Narrator n(t, {"material", "density (g/cm3)", "melting_point (°C)", "note"});
  EXPECT_EQ(n.render({"Iron", "7.874", "1538.4", ""}),
            "Iron has a density of 7.9 g/cm³. It melts at 1538 °C (melting point).\n\nSource: table 1.");
  EXPECT_EQ(n.render({"Gold", "x", "1064", "noble"}),
            "Gold has a density of x g/cm³. It melts at 1064 °C (melting point). Note: noble\n\nSource: table 1.");
}

TEST(Narrative, TemplateErrorsNameTheProblem) {
  auto message = [](const std::string& tmpl, std::vector<std::string> cols) {
    try {
      NarrativeTemplate t = parse_template(tmpl, "m.tmpl");
      Narrator n(t, cols);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message("format a: %s\n", {"a"}), "m.tmpl:1: number format '%s' is not one of %.Nf, %.Ne, %.Ng (N = 0..17) or %d");
  EXPECT_EQ(message("bogus: 1\n", {"a"}),
            "m.tmpl:1: unknown directive 'bogus' (known: key, unit, name, format, skip, template, ---)");
  EXPECT_NE(message("---\n{{missing}}\n", {"a", "b (m)"}).find("column 'missing', which the data does not have "
                                                               "(columns: a, b)"),
            std::string::npos);
  EXPECT_NE(message("---\n{{a\n", {"a"}).find("'{{' without '}}'"), std::string::npos);
}

}  // namespace
}  // namespace agpt::curate::extract

namespace agpt::curate::extract {
namespace {

// The shipped example (examples/extract/) keeps working.
TEST(Narrative, ShippedExampleRenders) {
  std::string dir = std::string(AGPT_SOURCE_DIR) + "/examples/extract/";
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  Table t = parse_delimited(slurp(dir + "materials.csv"), ',');
  ASSERT_TRUE(t.failure.empty());
  EXPECT_EQ(t.bad_rows, 0u);
  NarrativeTemplate tmpl = parse_template(slurp(dir + "materials.tmpl"), "materials.tmpl");
  Narrator n(tmpl, t.columns);
  EXPECT_EQ(n.render(t.rows[0].values),
            "Aluminium has a density of 2.70 g/cm3 at room temperature and melts at 660 °C. Its crystal structure "
            "is fcc. Its thermal conductivity is 237 W/(m·K). Its Young's modulus is 70 GPa. Note: light, corrosion "
            "resistant.");
  // Silicon has no Young's modulus: that line is left out.
  EXPECT_EQ(n.render(t.rows[5].values).find("Young"), std::string::npos);
}

}  // namespace
}  // namespace agpt::curate::extract
