#pragma once
// A fresh directory for one test, under the build tree (TESSERA_BINARY_DIR) or /tmp,
// removed when the test ends.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tessera::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "tessera") {
    namespace fs = std::filesystem;
    static std::atomic<int> counter{0};
    const char* binary_dir = std::getenv("TESSERA_BINARY_DIR");
    const fs::path base = binary_dir ? fs::path(binary_dir) / "test_tmp" : fs::temp_directory_path();
    path_ = base / (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace tessera::testing
