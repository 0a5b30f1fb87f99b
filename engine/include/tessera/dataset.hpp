#pragma once
/// One rank's part of a dataset: cubes over (time, y, x), or (time, group, y, x) for grouped
/// cubes of up-the-ramp reads, in the current partition, plus small replicated products
/// (per-frame vectors, 2D images, attributes).
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "tessera/errors.hpp"
#include "tessera/partition.hpp"

namespace tessera {

enum class ElementType { Float32, UInt32, UInt8 };
std::string to_string(ElementType type);

/// Name and description of a variable as written to the output file.
struct VarInfo {
  std::string name;
  std::string units;      ///< UDUNITS-style, e.g. "electron", "s", "d", "1"
  std::string long_name;  ///< one line for humans
};

/// Frames of a cube held by this rank: frames [t_begin, t_end), each `groups` images of
/// ny × nx row-major (groups is 1 except for grouped cubes, where a frame is an integration).
template <class T>
struct FrameSlab {
  std::size_t t_begin = 0, t_end = 0, ny = 0, nx = 0;
  T* base = nullptr;
  std::size_t groups = 1;
  /// Frame t (global index) as groups*ny*nx values.
  std::span<T> frame(std::size_t t) const { return {base + (t - t_begin) * groups * ny * nx, groups * ny * nx}; }
  /// Group g of frame t as ny*nx values.
  std::span<T> group(std::size_t t, std::size_t g) const {
    return {base + ((t - t_begin) * groups + g) * ny * nx, ny * nx};
  }
  T& operator()(std::size_t t, std::size_t y, std::size_t x) const { return base[((t - t_begin) * groups * ny + y) * nx + x]; }
  T& operator()(std::size_t t, std::size_t g, std::size_t y, std::size_t x) const {
    return base[(((t - t_begin) * groups + g) * ny + y) * nx + x];
  }
};

/// One tile of a cube held by this rank, each pixel's samples contiguous: nt of them, or for
/// a grouped cube nt·groups ordered (frame, group), i.e. sample t·groups + g.
template <class T>
struct TileBlock {
  Tile tile;
  std::size_t nt = 0;
  T* base = nullptr;
  std::size_t groups = 1;
  /// Time series of the i-th pixel of the tile (row-major inside the tile).
  std::span<T> series(std::size_t i) const { return {base + i * nt * groups, nt * groups}; }
  /// Time series of pixel (y, x) in global coordinates.
  std::span<T> series(std::size_t y, std::size_t x) const {
    return series((y - tile.y0) * tile.width() + (x - tile.x0));
  }
  std::size_t pixels() const { return tile.pixels(); }
};

/// A distributed cube; only this rank's part is stored.
struct CubeVariable {
  VarInfo info;
  std::variant<std::vector<float>, std::vector<std::uint32_t>, std::vector<std::uint8_t>> values;
  bool grouped = false;  ///< (time, group, y, x): CubeShape::ng samples per pixel and frame
  ElementType type() const { return static_cast<ElementType>(values.index()); }
  std::size_t depth(const CubeShape& shape) const { return grouped ? shape.ng : 1; }
};

/// A per-frame vector (length nt), the same on every rank.
struct FrameVector {
  VarInfo info;
  std::vector<double> values;
  bool integer = false;  ///< written as int64 rather than float64
};

/// A small 2D image, the same on every rank, with its own dimension names.
struct Image {
  VarInfo info;
  std::string dim_y = "y", dim_x = "x";
  std::size_t ny = 0, nx = 0;
  std::vector<float> values;
};

using AttrValue = std::variant<std::string, double, std::int64_t>;

class Dataset {
 public:
  Dataset() = default;
  Dataset(CubeShape shape, Partition partition, int rank)
      : shape_(shape), partition_(std::move(partition)), rank_(rank) {}

  const CubeShape& shape() const { return shape_; }
  const Partition& partition() const { return partition_; }
  int rank() const { return rank_; }

  /// Adds a cube in the current partition, filled with `fill`; grouped cubes hold ng samples
  /// per pixel and frame.
  void add_cube(VarInfo info, ElementType type, double fill = 0.0, bool grouped = false);
  bool has_cube(const std::string& name) const { return cubes_.count(name) > 0; }
  CubeVariable& cube(const std::string& name);
  const CubeVariable& cube(const std::string& name) const;
  std::map<std::string, CubeVariable>& cubes() { return cubes_; }
  const std::map<std::string, CubeVariable>& cubes() const { return cubes_; }

  /// This rank's frames of a cube; throws if the layout is not Frames or T is the wrong type.
  template <class T>
  FrameSlab<T> frames(const std::string& name);
  /// This rank's tiles of a cube; throws if the layout is not PixelTiles or T is the wrong type.
  template <class T>
  std::vector<TileBlock<T>> tiles(const std::string& name);

  /// Replaces the partition (used by the transposer, which has moved the storage).
  void set_partition(Partition partition) { partition_ = std::move(partition); }
  /// Replaces shape and partition together (used by the engine when a step resamples the
  /// frame and group axes, after it has rebuilt every cube's storage).
  void set_shape(CubeShape shape, Partition partition) {
    shape_ = shape;
    partition_ = std::move(partition);
  }
  /// Elements a cube holds on this rank in the current partition.
  std::size_t local_elements(const CubeVariable& cube) const {
    return partition_.local_elements(rank_) * cube.depth(shape_);
  }

  std::map<std::string, FrameVector>& frame_vectors() { return frame_vectors_; }
  const std::map<std::string, FrameVector>& frame_vectors() const { return frame_vectors_; }
  FrameVector& frame_vector(const std::string& name);
  /// Adds (or resets) a per-frame vector of zeros.
  FrameVector& add_frame_vector(VarInfo info, bool integer = false);

  std::map<std::string, Image>& images() { return images_; }
  const std::map<std::string, Image>& images() const { return images_; }
  Image& image(const std::string& name);

  std::map<std::string, AttrValue>& attributes() { return attributes_; }
  const std::map<std::string, AttrValue>& attributes() const { return attributes_; }

 private:
  template <class T>
  std::vector<T>& storage(const std::string& name);

  CubeShape shape_;
  Partition partition_;
  int rank_ = 0;
  std::map<std::string, CubeVariable> cubes_;
  std::map<std::string, FrameVector> frame_vectors_;
  std::map<std::string, Image> images_;
  std::map<std::string, AttrValue> attributes_;
};

template <class T>
std::vector<T>& Dataset::storage(const std::string& name) {
  auto* values = std::get_if<std::vector<T>>(&cube(name).values);
  if (!values) throw InternalError("cube '" + name + "' is " + to_string(cube(name).type()) + ", not the type asked for");
  return *values;
}

template <class T>
FrameSlab<T> Dataset::frames(const std::string& name) {
  if (partition_.layout() != Layout::Frames)
    throw InternalError("cube '" + name + "' is in pixel tiles, but frames were asked for");
  auto& values = storage<T>(name);
  return {partition_.frame_begin(rank_), partition_.frame_end(rank_), shape_.ny, shape_.nx, values.data(),
          cube(name).depth(shape_)};
}

template <class T>
std::vector<TileBlock<T>> Dataset::tiles(const std::string& name) {
  if (partition_.layout() != Layout::PixelTiles)
    throw InternalError("cube '" + name + "' is in frames, but pixel tiles were asked for");
  auto& values = storage<T>(name);
  const std::size_t depth = cube(name).depth(shape_);
  std::vector<TileBlock<T>> out;
  std::size_t offset = 0;
  for (std::size_t index : partition_.local_tiles(rank_)) {
    const Tile& tile = partition_.tiles()[index];
    out.push_back({tile, shape_.nt, values.data() + offset, depth});
    offset += tile.pixels() * shape_.nt * depth;
  }
  return out;
}

}  // namespace tessera
