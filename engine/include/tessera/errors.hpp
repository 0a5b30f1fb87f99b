#pragma once
/// Tessera's exception hierarchy. Each class maps to a process exit status so that
/// scripts and schedulers can tell a bad workflow from a failed run.
#include <stdexcept>
#include <string>

namespace tessera {

/// Exit statuses of the `tessera` command.
enum class ExitCode : int { ok = 0, runtime_failure = 1, invalid_workflow = 2 };

/// Base of every error Tessera raises on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual ExitCode exit_code() const { return ExitCode::runtime_failure; }
};

/// The workflow or command line is wrong (exit 2). Message ends with file:line:column where known.
class ConfigError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::invalid_workflow; }
};

/// The input data is missing, malformed or inconsistent (exit 1). Message names the file or frame.
class InputError : public Error {
 public:
  using Error::Error;
};

/// A library call (CFITSIO, HDF5, MPI) or the file system failed (exit 1).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A step failed while processing data (exit 1). Message names the step id and rank.
class StepError : public Error {
 public:
  using Error::Error;
};

/// A broken invariant inside Tessera itself (exit 1): a bug, please report it.
class InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace tessera
