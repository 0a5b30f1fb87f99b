#include "tessera/io/hdf5_writer.hpp"

#include <cmath>
#include <filesystem>
#include <type_traits>

#include "hdf5_util.hpp"
#include "tessera/collective.hpp"

namespace tessera {
namespace {

using h5::detail::Handle;
using h5::detail::NetcdfBuilder;

std::vector<std::string> last_io_modes;

std::string io_mode_name(H5D_mpio_actual_io_mode_t mode) {
  switch (mode) {
    case H5D_MPIO_NO_COLLECTIVE: return "no collective";
    case H5D_MPIO_CHUNK_INDEPENDENT: return "chunk independent";
    case H5D_MPIO_CHUNK_COLLECTIVE: return "chunk collective";
    case H5D_MPIO_CHUNK_MIXED: return "chunk mixed";
    case H5D_MPIO_CONTIGUOUS_COLLECTIVE: return "contiguous collective";
  }
  return "unknown";
}

/// Runs `body`, turning any failure into the IoError that the header promises. Tessera's
/// own errors already name the file; others get `path` in front.
template <class F>
void as_io_error(const std::string& path, F&& body) {
  try {
    body();
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    throw IoError(e.what());
  } catch (const std::bad_alloc&) {
    throw IoError(path + ": out of memory while writing");
  } catch (const std::exception& e) {
    throw IoError(path + ": " + e.what());
  }
}

std::vector<std::int64_t> to_int64(const std::vector<double>& values) {
  std::vector<std::int64_t> out;
  out.reserve(values.size());
  for (double v : values) out.push_back(std::llround(v));
  return out;
}

/// Checks the dataset before any collective HDF5 call. Cube storage differs between ranks,
/// so a bad cube found later, inside HDF5, would leave the other ranks waiting.
void check_dataset(const Dataset& data, const std::string& path, MPI_Comm comm) {
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  const Partition& p = data.partition();
  if (data.rank() != rank || p.nranks() != nranks || !(p.shape() == data.shape()))
    throw InternalError(path + ": the dataset's partition (rank " + std::to_string(data.rank()) + " of " +
                        std::to_string(p.nranks()) + ") does not match the communicator (rank " + std::to_string(rank) +
                        " of " + std::to_string(nranks) + ") or its cube shape");
  for (const auto& [name, cube] : data.cubes()) {
    const std::size_t n = std::visit([](const auto& values) { return values.size(); }, cube.values);
    if (n != data.local_elements(cube))
      throw InternalError(path + ": cube '" + name + "' holds " + std::to_string(n) + " values on rank " +
                          std::to_string(rank) + ", but its partition gives that rank " +
                          std::to_string(data.local_elements(cube)));
  }
  for (const auto& [name, vector] : data.frame_vectors())
    if (vector.values.size() != data.shape().nt)
      throw InternalError(path + ": per-frame vector '" + name + "' has " + std::to_string(vector.values.size()) +
                          " values for " + std::to_string(data.shape().nt) + " frames");
  for (const auto& [name, image] : data.images())
    if (image.values.size() != image.ny * image.nx)
      throw InternalError(path + ": image '" + name + "' has " + std::to_string(image.values.size()) +
                          " values, not " + std::to_string(image.ny) + " x " + std::to_string(image.nx));
}

/// One collective write of `n` local values into `file_space` (already selected), or of
/// nothing when n is 0: a rank with nothing to write still takes part in the call.
template <class T>
void write_selection(NetcdfBuilder& b, hid_t dataset, hid_t file_space, const T* values, std::size_t n,
                     const std::string& name) {
  const Handle mem_space = h5::detail::create_simple_space({std::max<std::size_t>(n, 1)}, dataset);
  const T none{};  // HDF5 wants a buffer even when nothing is selected
  if (n == 0) {
    h5::detail::select_none(file_space, dataset);
    h5::detail::select_none(mem_space, dataset);
  }
  b.write(dataset, h5::detail::native_type<T>(), mem_space, file_space, n ? values : &none, name);
}

/// Frames layout: this rank's frames [t_begin, t_end) are one hyperslab.
/// A grouped cube's dataset is (time, group, y, x); its selections name the group axis whole.
std::vector<hsize_t> file_start(std::size_t depth, std::size_t t, std::size_t y, std::size_t x) {
  if (depth == 1) return {t, y, x};
  return {t, 0, y, x};
}
std::vector<hsize_t> file_count(std::size_t depth, std::size_t nt, std::size_t ny, std::size_t nx) {
  if (depth == 1) return {nt, ny, nx};
  return {nt, depth, ny, nx};
}

template <class T>
void write_frames(NetcdfBuilder& b, hid_t dataset, const Dataset& data, std::size_t depth, const std::vector<T>& values,
                  const std::string& name) {
  const CubeShape& s = data.shape();
  const std::size_t t0 = data.partition().frame_begin(data.rank()), t1 = data.partition().frame_end(data.rank());
  const Handle file_space = h5::detail::get_space(dataset);
  if (!values.empty())
    h5::detail::select_hyperslab(file_space, file_start(depth, t0, 0, 0), file_count(depth, t1 - t0, s.ny, s.nx), dataset);
  write_selection(b, dataset, file_space, values.data(), values.size(), name);
}

/// PixelTiles layout: one collective write per cube. The file selection is the union of
/// this rank's tiles over all frames, which HDF5 fills in file order (t, then y, then x);
/// the tiles are stored pixel-major, so they are first reordered into that order. Costs
/// one extra copy of this rank's share of the cube, the same bound as a transpose, and
/// lets MPI-IO merge everything into large contiguous file writes (writing tile by tile
/// made hundreds of thousands of small pieces and was ten times slower).
template <class T>
void write_tiles(NetcdfBuilder& b, hid_t dataset, const Dataset& data, std::size_t depth, const std::vector<T>& values,
                 const std::string& name) {
  const Partition& p = data.partition();
  const CubeShape& s = data.shape();
  // A grouped cube's samples are (frame, group) pairs, in file order too.
  const std::size_t nt = s.nt * depth;
  const std::vector<std::size_t> mine = p.local_tiles(data.rank());

  // Position of each of this rank's pixels within one time slice of the selection:
  // row_start[y] counts this rank's pixels in rows above y; a tile's column offset counts
  // the pixels of this rank's tiles to its left in the same rows.
  std::vector<std::size_t> row_pixels(s.ny, 0);
  for (std::size_t k : mine)
    for (std::size_t y = p.tiles()[k].y0; y < p.tiles()[k].y1; ++y) row_pixels[y] += p.tiles()[k].width();
  std::vector<std::size_t> row_start(s.ny + 1, 0);
  for (std::size_t y = 0; y < s.ny; ++y) row_start[y + 1] = row_start[y] + row_pixels[y];
  const std::size_t slice = row_start[s.ny];  // this rank's pixels

  std::vector<T> buffer(values.size());
  const Handle file_space = h5::detail::get_space(dataset);
  h5::detail::select_none(file_space, dataset);
  std::size_t offset = 0;  // of the current tile in `values`
  for (std::size_t k : mine) {
    const Tile& tile = p.tiles()[k];
    std::size_t left = 0;  // pixels of this rank's tiles left of this one, in the same rows
    for (std::size_t j : mine)
      if (p.tiles()[j].y0 == tile.y0 && p.tiles()[j].x0 < tile.x0) left += p.tiles()[j].width();
    for (std::size_t y = tile.y0; y < tile.y1; ++y) {
      const std::size_t position = row_start[y] + left;
      const T* series = values.data() + offset + (y - tile.y0) * tile.width() * nt;
      // A row of the tile: width consecutive positions in each of the nt time slices. Time
      // outermost keeps the writes contiguous; the row's series (width × nt) stay in cache.
      for (std::size_t t = 0; t < nt; ++t) {
        T* out = buffer.data() + t * slice + position;
        for (std::size_t x = 0; x < tile.width(); ++x) out[x] = series[x * nt + t];
      }
    }
    offset += tile.pixels() * nt;
    h5::detail::add_hyperslab(file_space, file_start(depth, 0, tile.y0, tile.x0),
                              file_count(depth, s.nt, tile.height(), tile.width()), dataset);
  }
  write_selection(b, dataset, file_space, buffer.data(), buffer.size(), name);
}

/// Writes the whole file at `path` (collective). Every rank makes the same metadata calls in
/// the same order; only the cube writes differ in what they select.
void write_file(const Dataset& data, const std::string& path, MPI_Comm comm,
                const std::map<std::string, AttrValue>& attributes) {
  namespace d = h5::detail;
  const CubeShape& s = data.shape();
  const Handle fapl = d::create_plist(H5P_FILE_ACCESS, path);
  d::set_fapl_mpio(fapl, comm, path);
  d::set_format_1_8(fapl, path);
  const Handle fcpl = d::create_plist(H5P_FILE_CREATE, path);
  d::set_link_creation_order(fcpl, path);
  const Handle dxpl = d::create_plist(H5P_DATASET_XFER, path);
  d::set_dxpl_collective(dxpl, path);
  Handle file = d::create_file(path, fcpl, fapl);
  {
    NetcdfBuilder b(file, path, dxpl, data.rank() == 0);

    // Dimensions first, since every variable attaches to their scales.
    const auto time = data.frame_vectors().find("time");
    if (time == data.frame_vectors().end()) {
      b.require_dim("time", s.nt, {"time", "1", "frame index"});
    } else if (time->second.integer) {
      b.add_coordinate("time", to_int64(time->second.values), time->second.info);
    } else {
      b.add_coordinate("time", time->second.values, time->second.info);
    }
    for (const auto& [name, cube] : data.cubes())
      if (cube.grouped) {
        b.require_dim("group", s.ng, {"group", "1", "group (read) index within the integration"});
        break;
      }
    b.require_dim("y", s.ny, {"y", "pixel", "pixel row"});
    b.require_dim("x", s.nx, {"x", "pixel", "pixel column"});

    // Cubes. Contiguous rather than chunked: without filters chunking buys nothing for a
    // cube written once, while a contiguous layout makes each rank's frame slab one file
    // range and lets MPI-IO's two-phase collective buffering merge the tiles, with no
    // chunk index to build or keep consistent across ranks.
    for (const auto& [name, cube] : data.cubes()) {
      std::visit(
          [&](const auto& values) {
            using T = typename std::decay_t<decltype(values)>::value_type;
            const std::size_t depth = cube.depth(s);
            const std::vector<std::string> dims =
                cube.grouped ? std::vector<std::string>{"time", "group", "y", "x"} : std::vector<std::string>{"time", "y", "x"};
            const Handle dataset = b.add_variable(name, d::native_type<T>(), dims, cube.info);
            if (s.elements() * depth == 0) return;  // the same on every rank: nothing to write
            if (data.partition().layout() == Layout::Frames)
              write_frames(b, dataset, data, depth, values, name);
            else
              write_tiles(b, dataset, data, depth, values, name);
          },
          cube.values);
    }

    // Replicated products: rank 0 supplies the values inside collective writes.
    for (const auto& [name, vector] : data.frame_vectors()) {
      if (name == "time") continue;  // already written as the time coordinate
      if (vector.integer) {
        const std::vector<std::int64_t> values = to_int64(vector.values);
        const Handle dataset = b.add_variable(name, H5T_NATIVE_INT64, {"time"}, vector.info);
        b.write_replicated(dataset, H5T_NATIVE_INT64, values.data(), values.size(), name);
      } else {
        const Handle dataset = b.add_variable(name, H5T_NATIVE_DOUBLE, {"time"}, vector.info);
        b.write_replicated(dataset, H5T_NATIVE_DOUBLE, vector.values.data(), vector.values.size(), name);
      }
    }
    // 1D images named like their dimension are its coordinate (e.g. wavelength), so they go
    // first, before any image over that dimension gets an index coordinate.
    auto is_coordinate = [](const std::string& name, const Image& image) {
      return image.dim_y.empty() && image.dim_x == name;
    };
    for (const auto& [name, image] : data.images())
      if (is_coordinate(name, image)) b.add_coordinate(name, image.values, image.info);
    for (const auto& [name, image] : data.images()) {
      if (is_coordinate(name, image)) continue;
      b.require_dim(image.dim_x, image.nx, {image.dim_x, "1", "index along " + image.dim_x});
      std::vector<std::string> dims{image.dim_x};
      if (!image.dim_y.empty()) {
        b.require_dim(image.dim_y, image.ny, {image.dim_y, "1", "index along " + image.dim_y});
        dims.insert(dims.begin(), image.dim_y);
      }
      const Handle dataset = b.add_variable(name, H5T_NATIVE_FLOAT, dims, image.info);
      b.write_replicated(dataset, H5T_NATIVE_FLOAT, image.values.data(), image.values.size(), name);
    }
    for (const auto& [name, value] : attributes) d::set_attribute(file, name, value);

    last_io_modes.clear();
    for (auto mode : b.io_modes()) last_io_modes.push_back(io_mode_name(mode));
    b.close();
  }
  file.close(path, "cannot close (flush) the file");
}

}  // namespace

std::vector<std::string> detail::last_hdf5_io_modes() { return last_io_modes; }

void write_dataset_hdf5(const Dataset& data, const std::string& path, MPI_Comm comm,
                        const std::map<std::string, AttrValue>& extra_attributes) {
  h5::detail::quiet_errors();
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string partial = path + ".partial";
  std::map<std::string, AttrValue> attributes = extra_attributes;
  attributes.insert(data.attributes().begin(), data.attributes().end());  // extra ones win on a clash
  last_io_modes.clear();
  try {
    collectively(comm, [&] { as_io_error(path, [&] { check_dataset(data, path, comm); }); });
    collectively(comm, [&] { as_io_error(partial, [&] { write_file(data, partial, comm, attributes); }); });
    collectively(comm, [&] {
      if (rank != 0) return;
      std::error_code ec;
      std::filesystem::rename(partial, path, ec);
      if (ec) throw IoError(path + ": cannot rename " + partial + " to it: " + ec.message());
    });
  } catch (...) {
    // Every rank is here (the agreement above is collective) and has closed the file.
    if (rank == 0) {
      std::error_code ignored;
      std::filesystem::remove(partial, ignored);
    }
    throw;
  }
}

}  // namespace tessera
