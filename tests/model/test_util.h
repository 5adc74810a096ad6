// Helpers shared by the model tests: a temporary directory removed at scope exit.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace agpt::model::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("agpt-model-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string testdata(const std::string& rel) { return std::string(AGPT_TESTDATA) + "/" + rel; }

}  // namespace agpt::model::testing
