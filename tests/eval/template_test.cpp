// Templates: {{field}} holes, paths with indexes, the field-name shortcut, and clear errors.
#include "eval/template.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace agpt::eval {
namespace {

const Json kDoc = Json::parse(R"({"question": "Why?", "choices": ["a", "b c"], "meta": {"n": 3, "ok": true, "x": null},
                                  "answer": 1, "pi": 3.5})");

TEST(Template, FillsFieldsPathsAndIndexes) {
  EXPECT_EQ(Template("Q: {{question}}\nA:", "t").render(kDoc), "Q: Why?\nA:");
  EXPECT_EQ(Template("{{ choices[1] }}|{{choices[0]}}", "t").render(kDoc), "b c|a");
  EXPECT_EQ(Template("{{meta.n}} {{meta['ok']}} {{meta.x}} {{pi}}", "t").render(kDoc), "3 True None 3.5");
  EXPECT_EQ(Template("no holes", "t").render(kDoc), "no holes");
  EXPECT_EQ(Template("", "t").render(kDoc), "");
}

TEST(Template, FieldNameShortcutAndValues) {
  // lm-evaluation-harness: a bare field name stands for the field.
  EXPECT_EQ(Template("question", "t").render(kDoc), "Why?");
  EXPECT_EQ(Template("answer", "t").value(kDoc), Json(1));
  EXPECT_EQ(Template("{{choices}}", "t").value(kDoc), kDoc["choices"]);
  EXPECT_TRUE(Template("{{choices}}", "t").is_single_expression());
  EXPECT_EQ(Template("x {{answer}}", "t").value(kDoc), Json("x 1"));
}

TEST(Template, RejectsUnsupportedSyntaxWhenParsed) {
  auto message = [](const std::string& src) {
    try {
      Template t(src, "doc_to_text");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{% if a %}x{% endif %}").find("Jinja statements"), std::string::npos);
  EXPECT_NE(message("{{ question | upper }}").find("filters"), std::string::npos);
  EXPECT_NE(message("{{ question.strip() }}").find("calls"), std::string::npos);
  EXPECT_NE(message("{{ question").find("never closed"), std::string::npos);
  EXPECT_NE(message("{{ choices[-1] }}").find("index"), std::string::npos);
  EXPECT_NE(message("{{ 3 }}").find("field name"), std::string::npos);
}

TEST(Template, MissingFieldsNameTheFieldsThatExist) {
  try {
    Template("{{questoin}}", "doc_to_text").render(kDoc);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("doc_to_text"), std::string::npos) << m;
    EXPECT_NE(m.find("questoin"), std::string::npos) << m;
    EXPECT_NE(m.find("pi, question"), std::string::npos) << m;
  }
  EXPECT_THROW(Template("{{choices[2]}}", "t").render(kDoc), Error);
  EXPECT_THROW(Template("{{question[0]}}", "t").render(kDoc), Error);
}

}  // namespace
}  // namespace agpt::eval
