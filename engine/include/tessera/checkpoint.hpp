#pragma once
/// Checkpoints and resume. After a step marked `checkpoint = true` (or every step under
/// `--checkpoint-all`) the whole state of the run (every cube in its current partition,
/// per-frame vector, image and attribute) is written collectively to
/// OUTPUT_STEM.checkpoints/NN_STEPID.h5 next to the output. Each checkpoint carries the hash
/// of the computation that produced it: the input's kind and parameters, then each step run
/// so far (kind and every resolved parameter) chained in execution order, so changing a step
/// invalidates its checkpoint and every later one, never an earlier one. A finished output
/// carries `tessera_complete = 1` and the whole workflow's hash, so `--resume` can skip it.
#include <mpi.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/dataset.hpp"
#include "tessera/workflow.hpp"

namespace tessera {

/// 64-bit FNV-1a of `text` as 16 hex digits: stable across builds and machines (std::hash is
/// not), and ample for telling workflows apart (not a security hash).
std::string stable_hash(std::string_view text);

/// Hash of what the run reads: the input kind and its resolved parameters.
std::string input_hash(const Workflow& workflow);
/// chain[k] is the hash of the state after the k-th step of `workflow.order`:
/// hash(chain[k-1], that step's kind and resolved parameters), chain[-1] being input_hash.
std::vector<std::string> step_chain_hashes(const Workflow& workflow);
/// The hash of the whole computation: the last chain hash (input_hash with no steps).
std::string workflow_hash(const Workflow& workflow);

/// OUTPUT_STEM.checkpoints (next to the output file).
std::string checkpoint_directory(const std::string& output_path);
/// OUTPUT_STEM.checkpoints/NN_STEPID.h5, NN the step's 1-based position in execution order.
std::string checkpoint_path(const std::string& output_path, std::size_t position, const std::string& step_id);

struct CheckpointInfo {
  std::string path, step_id, hash;
  std::size_t position = 0;  ///< 1-based position of the step in execution order
};

/// Collective: writes the state after step `info.step_id` to `info.path` (via a partial file
/// renamed on success, like outputs).
void write_checkpoint(const Dataset& data, const CheckpointInfo& info, MPI_Comm comm);
/// Serial: what a checkpoint file says it is; nullopt when the file is missing, unreadable
/// or not a Tessera checkpoint.
std::optional<CheckpointInfo> read_checkpoint_info(const std::string& path);
/// Collective: the state stored in a checkpoint, in frame slabs over `comm`'s ranks (any
/// rank count: each rank reads its own frames).
Dataset read_checkpoint(const std::string& path, MPI_Comm comm);

/// Serial: the file exists, is a complete Tessera output and was made by the workflow with hash `hash`.
bool output_is_complete(const std::string& output_path, const std::string& hash);

}  // namespace tessera
