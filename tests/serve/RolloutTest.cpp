//===- RolloutTest.cpp - GRPO pieces: rewards, advantages, seeds ----------===//
#include "moec/runtime/Rollout.h"
#include "moec/serve/RolloutJob.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moec {
namespace {

TEST(VerseReward, RegularPoemsOnly) {
  // Five- and seven-character lines, title and attribution lines ignored.
  EXPECT_EQ(verseReward("床前明月光，疑是地上霜。\n举头望明月，低头思故乡。"), 1);
  EXPECT_EQ(verseReward("《静夜思》\n作者：李白\n床前明月光，疑是地上霜。\n-- 李白"), 1);
  EXPECT_EQ(verseReward("朝辞白帝彩云间，千里江陵一日还。"), 1);
  EXPECT_EQ(verseReward("春眠不觉晓，处处闻啼鸟？"), 1);
  // Mixed lengths, a clause of 6, no final punctuation, nothing but attribution: 0.
  EXPECT_EQ(verseReward("床前明月光，千里江陵一日还。"), 0);
  EXPECT_EQ(verseReward("床前明月光光，疑是地上霜。"), 0);
  EXPECT_EQ(verseReward("床前明月光，疑是地上霜"), 0);
  EXPECT_EQ(verseReward("床前明月光，疑是地上霜，"), 0);
  EXPECT_EQ(verseReward("-- 李白《长相思》"), 0);
  EXPECT_EQ(verseReward("Moonlight, frost."), 0);
}

TEST(GroupAdvantages, MatchTheFormula) {
  std::vector<double> a = groupAdvantages({1, 0, 0, 1});
  // mean 0.5, population std 0.5.
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], (i == 0 || i == 3 ? 0.5 : -0.5) / (0.5 + 1e-4), 1e-12);
  for (double x : groupAdvantages({3, 3, 3}))
    EXPECT_EQ(x, 0.0); // equal rewards: no signal, no division by zero
  EXPECT_TRUE(groupAdvantages({}).empty());
}

TEST(SampleSeed, DistinctAndReproducible) {
  EXPECT_EQ(sampleSeed(5, 2, 3), sampleSeed(5, 2, 3));
  EXPECT_NE(sampleSeed(5, 2, 3), sampleSeed(5, 3, 2));
  EXPECT_NE(sampleSeed(5, 0, 0), sampleSeed(6, 0, 0));
}

} // namespace
} // namespace moec
