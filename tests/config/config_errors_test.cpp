// One workflow file per kind of configuration error (tests/config/*.toml). Each file's
// "# expect: LINE:COLUMN: MESSAGE" comments list the problems validation must report,
// with their positions; a file may expect several problems reported at once.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/memory_input.hpp"
#include "tessera/errors.hpp"
#include "tessera/workflow.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> config_files() {
  const fs::path dir = fs::path(TESSERA_SOURCE_DIR) / "tests" / "config";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

class ConfigError : public ::testing::TestWithParam<fs::path> {};

TEST_P(ConfigError, ReportsEveryExpectedProblemWithItsPosition) {
  const fs::path path = GetParam();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> expected;
  std::istringstream lines(text.str());
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("# expect: ", 0) == 0) expected.push_back(path.filename().string() + ":" + line.substr(10));
  ASSERT_FALSE(expected.empty()) << path << " has no '# expect:' line";

  static const tessera::Registry registry = tessera::testing::test_registry();
  try {
    tessera::parse_workflow(text.str(), path.filename().string(), {}, registry);
    FAIL() << path << ": no error reported";
  } catch (const tessera::ConfigError& e) {
    const std::string message = e.what();
    for (const auto& want : expected) EXPECT_NE(message.find(want), std::string::npos) << "want: " << want << "\ngot:\n" << message;
    std::size_t reported = std::count(message.begin(), message.end(), '\n') + 1;
    EXPECT_EQ(reported, expected.size()) << message;
    EXPECT_EQ(static_cast<int>(e.exit_code()), 2);
  }
}

INSTANTIATE_TEST_SUITE_P(Files, ConfigError, ::testing::ValuesIn(config_files()),
                         [](const auto& test) { return test.param.stem().string(); });

}  // namespace
