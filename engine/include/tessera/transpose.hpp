#pragma once
/// Moving cubes between frame slabs and pixel tiles with MPI_Alltoallv.
#include <mpi.h>

#include <cstddef>

#include "tessera/dataset.hpp"

namespace tessera {

struct TransposeStats {
  std::size_t bytes_sent_to_other_ranks = 0;  ///< this rank, all cubes
  std::size_t chunks = 0;                     ///< all-to-all rounds
  double seconds = 0;
};

/// Redistributes every cube of `data` into `target` (collective over `comm`; every rank
/// passes the same target). Frames → tiles, tiles → frames and tiles → other tiles are
/// all supported; a no-op when the partitions are equal.
///
/// Memory bound: cubes move one at a time; besides the cube's old and new local storage,
/// each rank holds at most one send and one receive buffer of `chunk_bytes` each (rounded
/// up to whole frames: at least one frame's worth of data per round).
TransposeStats redistribute(Dataset& data, const Partition& target, MPI_Comm comm,
                            std::size_t chunk_bytes = std::size_t{64} << 20);

}  // namespace tessera
