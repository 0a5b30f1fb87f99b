#include "tessera/logger.hpp"

#include <cstdio>

namespace tessera {

std::string Logger::prefix() const {
  std::string p = "[rank " + std::to_string(rank_) + "]";
  if (!step_.empty()) p += " step '" + step_ + "':";
  return p + " ";
}

static void emit(std::FILE* sink, const std::string& line) {
  std::fprintf(sink, "%s\n", line.c_str());
  std::fflush(sink);
}

void Logger::info(const std::string& message) const {
  if (verbosity_ != Verbosity::Quiet && rank_ == 0) emit(sink_, message);
}

void Logger::debug(const std::string& message) const {
  if (verbosity_ == Verbosity::Verbose) emit(sink_, prefix() + message);
}

void Logger::warn(const std::string& message) const {
  if (verbosity_ != Verbosity::Quiet) emit(sink_, prefix() + "warning: " + message);
}

void Logger::error(const std::string& message) const { emit(sink_, prefix() + "error: " + message); }

}  // namespace tessera
