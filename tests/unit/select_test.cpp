// select_kth and median_of against a full sort, on random series with and without ties.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "steps/common/select.hpp"

namespace {

using tessera::steps::median_of;
using tessera::steps::select_kth;

TEST(Select, MatchesSortForEveryRankAndLength) {
  std::mt19937 rng(3);
  for (std::size_t n : {1u, 2u, 3u, 15u, 16u, 17u, 40u, 74u, 200u, 1001u}) {
    for (int distinct : {2, 5, 1000000}) {  // many ties, some ties, almost none
      std::uniform_int_distribution<int> value(0, distinct - 1);
      std::vector<float> base(n);
      for (auto& v : base) v = static_cast<float>(value(rng));
      std::vector<float> sorted = base;
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t k = 0; k < n; k += std::max<std::size_t>(1, n / 13)) {
        std::vector<float> v = base;
        ASSERT_EQ(select_kth(v, k), sorted[k]) << "n=" << n << " k=" << k << " distinct=" << distinct;
        for (std::size_t i = 0; i < k; ++i) ASSERT_LE(v[i], v[k]);
        for (std::size_t i = k + 1; i < n; ++i) ASSERT_GE(v[i], v[k]);
        std::sort(v.begin(), v.end());
        ASSERT_EQ(v, sorted) << "select_kth must only reorder";
      }
    }
  }
}

TEST(Select, ConstantAndSortedSeries) {
  std::vector<float> constant(5000, 7.0f);
  EXPECT_EQ(select_kth(constant, 2500), 7.0f);
  std::vector<float> ascending(300), descending(300);
  for (int i = 0; i < 300; ++i) ascending[i] = descending[299 - i] = static_cast<float>(i);
  EXPECT_EQ(select_kth(ascending, 123), 123.0f);
  EXPECT_EQ(select_kth(descending, 17), 17.0f);
}

TEST(Select, MedianOfOddAndEvenCounts) {
  std::vector<float> odd = {5, 1, 4, 2, 3};
  EXPECT_EQ(median_of(odd), 3.0f);
  std::vector<float> even = {8, 1, 4, 2};  // middle pair 2 and 4
  EXPECT_EQ(median_of(even), 3.0f);
  std::vector<float> empty;
  EXPECT_TRUE(std::isnan(median_of(empty)));
}

}  // namespace
