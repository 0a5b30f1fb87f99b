#include "tessera/collective.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "tessera/errors.hpp"

namespace tessera {
namespace {

enum ErrorClass : int { kGeneric, kConfig, kInput, kIo, kStep, kInternal };

ErrorClass classify(std::exception_ptr failure, std::string& message) {
  try {
    std::rethrow_exception(failure);
  } catch (const ConfigError& e) {
    message = e.what();
    return kConfig;
  } catch (const InputError& e) {
    message = e.what();
    return kInput;
  } catch (const IoError& e) {
    message = e.what();
    return kIo;
  } catch (const StepError& e) {
    message = e.what();
    return kStep;
  } catch (const InternalError& e) {
    message = e.what();
    return kInternal;
  } catch (const Error& e) {
    message = e.what();
    return kGeneric;
  } catch (const std::bad_alloc&) {
    message = "out of memory";
    return kInternal;
  } catch (const std::exception& e) {
    message = e.what();
    return kInternal;
  } catch (...) {
    message = "unknown exception";
    return kInternal;
  }
}

[[noreturn]] void throw_as(ErrorClass c, const std::string& message) {
  switch (c) {
    case kConfig: throw ConfigError(message);
    case kInput: throw InputError(message);
    case kIo: throw IoError(message);
    case kStep: throw StepError(message);
    case kInternal: throw InternalError(message);
    default: throw Error(message);
  }
}

constexpr int kProgressTag = 7101;
constexpr int kFinalTag = 7102;

}  // namespace

void agree_on_failure(MPI_Comm comm, std::exception_ptr local_failure) {
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  int mine = local_failure ? rank : nranks;
  int first = nranks;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == nranks) return;

  std::string message;
  int header[2] = {0, 0};
  if (rank == first) {
    header[0] = classify(local_failure, message);
    header[1] = static_cast<int>(message.size());
  }
  MPI_Bcast(header, 2, MPI_INT, first, comm);
  message.resize(static_cast<std::size_t>(header[1]));
  MPI_Bcast(message.data(), header[1], MPI_CHAR, first, comm);
  throw_as(static_cast<ErrorClass>(header[0]), message);
}

std::size_t sum_over_ranks(MPI_Comm comm, std::size_t value) {
  unsigned long long local = value, total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  return static_cast<std::size_t>(total);
}

std::vector<std::string> host_names(MPI_Comm comm) {
  int nranks = 1;
  MPI_Comm_size(comm, &nranks);
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  std::vector<char> all(static_cast<std::size_t>(nranks) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm);
  std::set<std::string> unique;
  for (int r = 0; r < nranks; ++r) unique.insert(std::string(all.data() + static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME));
  return {unique.begin(), unique.end()};
}

Progress::Progress(MPI_Comm comm, const Logger& log, std::string label, std::size_t local_units)
    : comm_(comm), log_(log), label_(std::move(label)) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &nranks_);
  total_units_ = sum_over_ranks(comm_, local_units);
  remote_counts_.assign(static_cast<std::size_t>(nranks_), 0);
  final_received_.assign(static_cast<std::size_t>(nranks_), false);
  start_ = last_send_ = last_print_ = std::chrono::steady_clock::now();
  tty_ = rank_ == 0 && isatty(fileno(log_.sink())) && log_.verbosity() == Verbosity::Normal;
}

Progress::~Progress() {
  // A step that threw still finishes its Progress collectively (the runner calls finish);
  // this only guards against leaked requests.
  if (!requests_.empty()) MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(std::size_t units) {
  local_done_ += units;
  const auto now = std::chrono::steady_clock::now();
  if (rank_ != 0) {
    if (now - last_send_ < std::chrono::milliseconds(200)) return;
    last_send_ = now;
    buffers_.push_back(std::make_unique<unsigned long long>(local_done_));
    requests_.emplace_back();
    MPI_Isend(buffers_.back().get(), 1, MPI_UNSIGNED_LONG_LONG, 0, kProgressTag, comm_, &requests_.back());
    return;
  }
  drain(false);
  if (tty_ && now - last_print_ > std::chrono::milliseconds(100)) {
    last_print_ = now;
    print(false, "");
  }
}

void Progress::drain(bool until_final) {
  // Messages from one sender arrive in order, so reading until its final message consumes
  // every progress message it sent. A final message may already have been read by an
  // earlier, non-blocking drain.
  for (int q = 1; q < nranks_; ++q) {
    const auto index = static_cast<std::size_t>(q);
    while (!final_received_[index]) {
      int flag = 1;
      MPI_Status status;
      if (!until_final) MPI_Iprobe(q, MPI_ANY_TAG, comm_, &flag, &status);
      if (!flag) break;
      unsigned long long value = 0;
      MPI_Recv(&value, 1, MPI_UNSIGNED_LONG_LONG, q, MPI_ANY_TAG, comm_, &status);
      remote_counts_[index] = value;
      final_received_[index] = status.MPI_TAG == kFinalTag;
    }
  }
  remote_done_ = 0;
  for (auto c : remote_counts_) remote_done_ += c;
}

void Progress::print(bool final_line, const std::string& summary) {
  const std::size_t done = std::min(total_units_, local_done_ + remote_done_);
  const double fraction = total_units_ ? static_cast<double>(done) / static_cast<double>(total_units_) : 1.0;
  const int width = 24;
  const int filled = static_cast<int>(fraction * width + 0.5);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(width, '.');
  char line[512];
  std::snprintf(line, sizeof line, "%-28s [%s] %3.0f%% %7.2f s%s%s", label_.c_str(), bar.c_str(), fraction * 100,
                elapsed_seconds(), summary.empty() ? "" : "  ", summary.c_str());
  std::FILE* sink = log_.sink();
  if (final_line) {
    std::fprintf(sink, "%s%s\n", tty_ ? "\r" : "", line);
  } else {
    std::fprintf(sink, "\r%s", line);
  }
  std::fflush(sink);
}

void Progress::finish(const std::string& summary) {
  if (finished_) return;
  finished_ = true;
  if (rank_ != 0) {
    unsigned long long value = local_done_;
    MPI_Send(&value, 1, MPI_UNSIGNED_LONG_LONG, 0, kFinalTag, comm_);
    if (!requests_.empty()) MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
  } else {
    drain(true);
    // A step that reports no progress has still done all of its work.
    if (log_.verbosity() != Verbosity::Quiet) {
      local_done_ = total_units_;
      print(true, summary);
    }
  }
}

}  // namespace tessera
