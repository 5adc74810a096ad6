// Structured records to narrative text: a default sentence per record ("Iron has a density of
// 7.87 g/cm3 and a melting point of 1538 °C."), or a user template with {{column}} placeholders,
// units and number formats. The template file format is documented in docs/extract.md.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "curate/extract/table.h"

namespace agpt::curate::extract {

// A column header split into its name and unit: "density (g/cm3)" and "density [g/cm^3]" give
// name "density", unit "g/cm3" / "g/cm^3". Without a trailing (...) or [...] the unit is empty.
struct ColumnName {
  std::string name, unit;
};
ColumnName split_unit(std::string_view header);

// A number format: "%.2f", "%.3e", "%.4g" or "%d" (rounded). Other printf forms are refused.
struct NumberFormat {
  char conversion = 0;  // 0: keep the value as written
  int precision = -1;
};

// A parsed template file (or the default, with no body).
struct NarrativeTemplate {
  std::string key;  // the column that names a record; default: the first column
  std::map<std::string, std::string> units, names;  // per column (by name without unit)
  std::map<std::string, NumberFormat> formats;
  std::vector<std::string> skip;  // columns left out of the default sentence
  std::string body;               // empty: the default sentence
};

// Parses a template file. Throws agpt::Error "<origin>:<line>: what, and how to fix it".
NarrativeTemplate parse_template(std::string_view text, const std::string& origin);

// Renders records to text with a template. Columns are resolved once (placeholders may name a
// column with or without its unit, any case); an unknown placeholder is an Error naming it and
// the columns there are.
class Narrator {
 public:
  Narrator(const NarrativeTemplate& tmpl, const std::vector<std::string>& columns);

  // The text of one record (values in the order of the columns given to the constructor).
  // Template body: every line is rendered; a line with a placeholder whose value is empty is
  // dropped; lines are joined by spaces, a blank line in the template is a paragraph break.
  std::string render(const std::vector<std::string>& values) const;

 private:
  std::string value_text(size_t column, const std::string& v, bool with_unit) const;

  struct Piece {
    std::string literal;
    int column = -1;  // -1: literal only
    enum { kValueWithUnit, kValue, kUnit, kName } what = kValueWithUnit;
  };
  const NarrativeTemplate& tmpl_;
  std::vector<ColumnName> cols_;
  std::vector<NumberFormat> formats_;
  std::vector<bool> skipped_;
  size_t key_ = 0;
  std::vector<std::vector<Piece>> lines_;  // parsed body; an empty vector is a paragraph break
};

}  // namespace agpt::curate::extract
