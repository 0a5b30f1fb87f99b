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
/// Memory bound: cubes move one at a time and a rank's own share is copied directly, so
/// besides the cube's old and new local storage each rank holds one send and one receive
/// buffer of at most max(chunk_bytes, 4·u) bytes, u being the most elements any rank moves
/// for one pixel (frames ↔ tiles) or one sample (tiles → tiles). See docs/transposes.md.
TransposeStats redistribute(Dataset& data, const Partition& target, MPI_Comm comm,
                            std::size_t chunk_bytes = std::size_t{64} << 20);

}  // namespace tessera
