#pragma once
/// How a (time, y, x) cube is spread over ranks: contiguous frame slabs, or 2D pixel tiles
/// that each hold the whole time series of their pixels.
#include <cstddef>
#include <string>
#include <vector>

namespace tessera {

/// nt frames of ny × nx pixels. Grouped cubes (up-the-ramp reads) hold ng samples per pixel
/// and frame, so a frame is then an integration of ng group images; other cubes hold one.
struct CubeShape {
  std::size_t nt = 0, ny = 0, nx = 0;
  std::size_t ng = 1;  ///< samples per pixel and frame of grouped cubes
  std::size_t frame_pixels() const { return ny * nx; }
  /// Elements of an ungrouped cube (grouped ones hold ng times as many).
  std::size_t elements() const { return nt * ny * nx; }
  bool operator==(const CubeShape&) const = default;
};

/// A rectangle of pixels [y0, y1) × [x0, x1).
struct Tile {
  std::size_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  std::size_t height() const { return y1 - y0; }
  std::size_t width() const { return x1 - x0; }
  std::size_t pixels() const { return height() * width(); }
  bool operator==(const Tile&) const = default;
};

enum class Layout { Frames, PixelTiles };
std::string to_string(Layout layout);

/// The global distribution of a cube. Identical on every rank.
///
/// Local storage order on a rank:
/// - Frames: its frames [t_begin, t_end) one after the other, each row-major (y, x).
/// - PixelTiles: its tiles in ascending tile index; inside a tile, pixels row-major, and each
///   pixel's nt samples contiguous (time fastest), so a pixel's time series is one span.
class Partition {
 public:
  /// Frame slabs: rank r holds frames [nt*r/P, nt*(r+1)/P).
  static Partition frames(CubeShape shape, int nranks);
  /// Tiles of at most tile_ny × tile_nx pixels in row-major order, dealt to ranks in
  /// contiguous runs of nearly equal pixel count (edge tiles are smaller).
  static Partition tiles(CubeShape shape, int nranks, std::size_t tile_ny, std::size_t tile_nx);

  Layout layout() const { return layout_; }
  const CubeShape& shape() const { return shape_; }
  int nranks() const { return nranks_; }

  // Frames layout.
  std::size_t frame_begin(int rank) const { return frame_bounds_[rank]; }
  std::size_t frame_end(int rank) const { return frame_bounds_[rank + 1]; }
  /// Rank holding frame t.
  int frame_owner(std::size_t t) const;

  // PixelTiles layout.
  const std::vector<Tile>& tiles() const { return tiles_; }
  int tile_owner(std::size_t tile) const { return tile_owner_[tile]; }
  /// Indices of the tiles rank holds, ascending.
  std::vector<std::size_t> local_tiles(int rank) const;
  std::size_t tile_ny() const { return tile_ny_; }
  std::size_t tile_nx() const { return tile_nx_; }

  /// Number of cube elements stored on rank.
  std::size_t local_elements(int rank) const;
  /// Pixels (tiles) or frames rank processes: the unit of progress.
  std::size_t local_work_units(int rank) const;

  /// The same distribution seen by a cube with `depth` samples per pixel and frame: a
  /// partition of nt·depth frames whose slab bounds are scaled by depth (tiles unchanged).
  /// Grouped cubes are moved and written through it.
  Partition with_depth(std::size_t depth) const;

  /// Elements that change rank when moving a cube from `from` to `to` (for plans and logs).
  static std::size_t elements_moved(const Partition& from, const Partition& to);

  /// "frames" or "tiles 64x64".
  std::string describe() const;

 private:
  Layout layout_ = Layout::Frames;
  CubeShape shape_;
  int nranks_ = 1;
  std::vector<std::size_t> frame_bounds_;  // nranks + 1 entries
  std::vector<Tile> tiles_;
  std::vector<int> tile_owner_;
  std::size_t tile_ny_ = 0, tile_nx_ = 0;
};

}  // namespace tessera
