#pragma once
/// Console messages. Every message from a rank other than 0, and every warning, carries
/// "[rank R]" and the current step id so that interleaved output stays readable.
#include <cstdio>
#include <string>

namespace tessera {

enum class Verbosity { Quiet = 0, Normal = 1, Verbose = 2 };

class Logger {
 public:
  /// Messages go to `sink` (stderr unless given; e.g. a survey visit's log file).
  Logger(int rank, Verbosity verbosity, std::FILE* sink = nullptr)
      : rank_(rank), verbosity_(verbosity), sink_(sink ? sink : stderr) {}
  std::FILE* sink() const { return sink_; }
  void set_step(std::string step_id) { step_ = std::move(step_id); }
  const std::string& step() const { return step_; }
  int rank() const { return rank_; }
  Verbosity verbosity() const { return verbosity_; }

  /// Progress-level message about the whole run, printed by rank 0 only.
  void info(const std::string& message) const;
  /// Detail printed only with -v, by every rank.
  void debug(const std::string& message) const;
  /// Printed by whichever rank calls it, unless -q.
  void warn(const std::string& message) const;
  /// Always printed.
  void error(const std::string& message) const;
  /// "[rank R] step 'id': "
  std::string prefix() const;

 private:
  int rank_;
  Verbosity verbosity_;
  std::FILE* sink_;
  std::string step_;
};

}  // namespace tessera
