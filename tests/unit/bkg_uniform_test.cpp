#include <gtest/gtest.h>

// UNDER CONSTRUCTION: replaced by the real tests.
TEST(Placeholder, Builds) {}
