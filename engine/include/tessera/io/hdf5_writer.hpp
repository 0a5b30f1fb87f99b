#pragma once
/// Collective parallel-HDF5 output of a distributed Dataset, netCDF-4 compatible.
#include <mpi.h>

#include <map>
#include <vector>
#include <string>

#include "tessera/dataset.hpp"

namespace tessera {

/// Writes every cube (whatever the current partition: each rank writes its own frames or
/// tiles with collective I/O), frame vector, image and attribute of `data` to `path`.
///
/// Layout of the file: dimensions time, y, x (dimension scales with coordinate variables:
/// time takes the values of the frame vector named "time" when there is one, else frame
/// index; y and x are pixel indices), cubes as (time, y, x), frame vectors as (time),
/// images over their own dims, attributes on the root plus `extra_attributes`. Every
/// variable has `units` and `long_name`.
///
/// The file is written under `path + ".partial"` and renamed to `path` only when every
/// rank succeeded; on failure the partial file is removed and IoError is thrown on every
/// rank. Collective: every rank of `comm` must call it.
void write_dataset_hdf5(const Dataset& data, const std::string& path, MPI_Comm comm,
                        const std::map<std::string, AttrValue>& extra_attributes);

namespace detail {
/// Test hook: for each raw-data write of this rank's last write_dataset_hdf5 call, the I/O
/// mode HDF5 reports it used (H5Pget_mpio_actual_io_mode), e.g. "contiguous collective".
std::vector<std::string> last_hdf5_io_modes();
}  // namespace detail

}  // namespace tessera
