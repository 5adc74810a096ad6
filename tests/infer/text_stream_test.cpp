// TextStream: text is released as soon as it cannot be the start of a stop string or an incomplete
// UTF-8 character; stop strings are found across token boundaries and are never shown.
#include "infer/text_stream.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace agpt::infer {
namespace {

TEST(TextStream, PlainTextPassesThrough) {
  TextStream s;
  EXPECT_EQ(s.push("Hello"), "Hello");
  EXPECT_EQ(s.push(", world"), ", world");
  EXPECT_EQ(s.finish(), "");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStream, SplitUtf8CharactersAreHeldUntilComplete) {
  TextStream s;
  EXPECT_EQ(s.push("caf\xC3"), "caf");       // é = C3 A9
  EXPECT_EQ(s.push("\xA9 "), "\xC3\xA9 ");
  EXPECT_EQ(s.push("\xF0\x9F"), "");         // 🙂 = F0 9F 99 82 over three tokens
  EXPECT_EQ(s.push("\x99"), "");
  EXPECT_EQ(s.push("\x82!"), "\xF0\x9F\x99\x82!");
  EXPECT_EQ(s.push("\xE2\x82"), "");          // € = E2 82 AC, cut short at the end
  EXPECT_EQ(s.finish(), "\xE2\x82");          // given as it is
}

TEST(TextStream, InvalidBytesAreNotHeldForever) {
  TextStream s;
  EXPECT_EQ(s.push("a\xFF"), "a\xFF");        // never a lead byte
  EXPECT_EQ(s.push("\x80"), "\x80");          // a stray continuation byte
  EXPECT_EQ(s.push("\xC3"), "");
  EXPECT_EQ(s.push("x"), "\xC3x");            // the lead byte was not followed by a continuation
}

TEST(TextStream, StopStringAcrossTokens) {
  TextStream s({"\n\n"});
  EXPECT_EQ(s.push("one\n"), "one");
  EXPECT_EQ(s.push("\ntwo"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched_stop(), "\n\n");
  EXPECT_EQ(s.push("more"), "");
  EXPECT_EQ(s.finish(), "");
}

TEST(TextStream, APrefixThatDoesNotCompleteIsReleased) {
  TextStream s({"END"});
  EXPECT_EQ(s.push("the E"), "the ");
  EXPECT_EQ(s.push("N"), "");
  EXPECT_EQ(s.push("D"), "");
  EXPECT_TRUE(s.stopped());

  TextStream t({"END"});
  EXPECT_EQ(t.push("xE"), "x");
  EXPECT_EQ(t.push("N"), "");
  EXPECT_EQ(t.push("Dless"), "");             // "END" inside one token
  EXPECT_TRUE(t.stopped());

  TextStream u({"END"});
  EXPECT_EQ(u.push("EN"), "");
  EXPECT_EQ(u.push("d"), "ENd");
  EXPECT_EQ(u.push("E"), "");
  EXPECT_EQ(u.finish(), "E");                 // generation ended: the held text is shown
  EXPECT_FALSE(u.stopped());
}

TEST(TextStream, TheEarliestStopWinsAndLongHoldsAreKept) {
  TextStream s({"cd", "b"});
  EXPECT_EQ(s.push("abcd"), "a");
  EXPECT_EQ(s.matched_stop(), "b");
  // The longest suffix that may start a stop string is held: "aab" could begin "aabx".
  TextStream t({"aabx", "ab"});
  EXPECT_EQ(t.push("zaa"), "z");
  EXPECT_EQ(t.push("c"), "aac");
  EXPECT_EQ(t.push("a"), "");
  EXPECT_EQ(t.push("b"), "");                 // "ab" is a stop string itself
  EXPECT_TRUE(t.stopped());
}

TEST(TextStream, MultiByteStopString) {
  TextStream s({"\xC3\xA9t\xC3\xA9"});        // "été"
  EXPECT_EQ(s.push("l'\xC3"), "l'");
  EXPECT_EQ(s.push("\xA9t"), "");
  EXPECT_EQ(s.push("\xC3\xA9 chaud"), "");
  EXPECT_TRUE(s.stopped());
}

TEST(TextStream, EmptyStopStringIsAnError) {
  EXPECT_THROW(TextStream({"ok", ""}), Error);
}

TEST(TextStream, CompleteUtf8Prefix) {
  EXPECT_EQ(complete_utf8_prefix("ab", 2), 2u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3", 2), 1u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9", 3), 3u);
  EXPECT_EQ(complete_utf8_prefix("\xE2\x82\xAC", 2), 0u);
  EXPECT_EQ(complete_utf8_prefix("\x80\x80\x80\x80", 4), 4u);
  EXPECT_EQ(complete_utf8_prefix("", 0), 0u);
}

}  // namespace
}  // namespace agpt::infer
