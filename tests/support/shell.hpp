#pragma once
// Runs a shell command from a test (e.g. /usr/bin/python3 with xarray) and returns its exit
// status and combined output.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <utility>

namespace tessera::testing {

inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace tessera::testing
