#include "tessera/partition.hpp"

#include <algorithm>

#include "tessera/errors.hpp"

namespace tessera {

std::string to_string(Layout layout) { return layout == Layout::Frames ? "frames" : "pixel tiles"; }

Partition Partition::frames(CubeShape shape, int nranks) {
  if (nranks < 1) throw InternalError("a partition needs at least one rank");
  Partition p;
  p.layout_ = Layout::Frames;
  p.shape_ = shape;
  p.nranks_ = nranks;
  p.frame_bounds_.resize(nranks + 1);
  for (int r = 0; r <= nranks; ++r) p.frame_bounds_[r] = shape.nt * static_cast<std::size_t>(r) / nranks;
  return p;
}

Partition Partition::tiles(CubeShape shape, int nranks, std::size_t tile_ny, std::size_t tile_nx) {
  if (nranks < 1) throw InternalError("a partition needs at least one rank");
  if (tile_ny == 0 || tile_nx == 0) throw InternalError("tile sides must be positive");
  Partition p;
  p.layout_ = Layout::PixelTiles;
  p.shape_ = shape;
  p.nranks_ = nranks;
  p.tile_ny_ = tile_ny;
  p.tile_nx_ = tile_nx;
  for (std::size_t y0 = 0; y0 < shape.ny; y0 += tile_ny)
    for (std::size_t x0 = 0; x0 < shape.nx; x0 += tile_nx)
      p.tiles_.push_back({y0, std::min(shape.ny, y0 + tile_ny), x0, std::min(shape.nx, x0 + tile_nx)});
  // Deal contiguous runs of tiles: a tile goes to the rank whose equal share of all pixels
  // contains the tile's middle pixel, which balances pixel counts to within one tile.
  const std::size_t total = shape.frame_pixels();
  std::size_t before = 0;
  for (const Tile& t : p.tiles_) {
    const std::size_t middle = before + t.pixels() / 2;
    int owner = total == 0 ? 0 : static_cast<int>(middle * static_cast<std::size_t>(nranks) / total);
    p.tile_owner_.push_back(std::min(owner, nranks - 1));
    before += t.pixels();
  }
  return p;
}

int Partition::frame_owner(std::size_t t) const {
  auto it = std::upper_bound(frame_bounds_.begin(), frame_bounds_.end(), t);
  return static_cast<int>(it - frame_bounds_.begin()) - 1;
}

std::vector<std::size_t> Partition::local_tiles(int rank) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < tiles_.size(); ++i)
    if (tile_owner_[i] == rank) out.push_back(i);
  return out;
}

std::size_t Partition::local_elements(int rank) const {
  if (layout_ == Layout::Frames) return (frame_end(rank) - frame_begin(rank)) * shape_.frame_pixels();
  std::size_t pixels = 0;
  for (std::size_t i : local_tiles(rank)) pixels += tiles_[i].pixels();
  return pixels * shape_.nt;
}

std::size_t Partition::local_work_units(int rank) const {
  if (layout_ == Layout::Frames) return frame_end(rank) - frame_begin(rank);
  return shape_.nt == 0 ? 0 : local_elements(rank) / shape_.nt;
}

std::size_t Partition::elements_moved(const Partition& from, const Partition& to) {
  if (from.shape_ != to.shape_ || from.nranks_ != to.nranks_) throw InternalError("partitions of different cubes");
  const CubeShape& s = from.shape_;
  std::size_t moved = 0;
  if (from.layout_ == Layout::Frames && to.layout_ == Layout::Frames) {
    for (std::size_t t = 0; t < s.nt; ++t)
      if (from.frame_owner(t) != to.frame_owner(t)) moved += s.frame_pixels();
    return moved;
  }
  if (from.layout_ == Layout::PixelTiles && to.layout_ == Layout::PixelTiles) {
    // Pixel by pixel is exact and cheap enough for planning (images are at most ~10^7 pixels).
    std::vector<int> owner(s.frame_pixels());
    for (std::size_t i = 0; i < from.tiles_.size(); ++i) {
      const Tile& t = from.tiles_[i];
      for (std::size_t y = t.y0; y < t.y1; ++y)
        for (std::size_t x = t.x0; x < t.x1; ++x) owner[y * s.nx + x] = from.tile_owner_[i];
    }
    for (std::size_t i = 0; i < to.tiles_.size(); ++i) {
      const Tile& t = to.tiles_[i];
      for (std::size_t y = t.y0; y < t.y1; ++y)
        for (std::size_t x = t.x0; x < t.x1; ++x)
          if (owner[y * s.nx + x] != to.tile_owner_[i]) moved += s.nt;
    }
    return moved;
  }
  const Partition& frames = from.layout_ == Layout::Frames ? from : to;
  const Partition& tiles = from.layout_ == Layout::Frames ? to : from;
  for (std::size_t i = 0; i < tiles.tiles_.size(); ++i) {
    const int tile_rank = tiles.tile_owner_[i];
    for (int r = 0; r < frames.nranks_; ++r)
      if (r != tile_rank) moved += (frames.frame_end(r) - frames.frame_begin(r)) * tiles.tiles_[i].pixels();
  }
  return moved;
}

Partition Partition::with_depth(std::size_t depth) const {
  Partition p = *this;
  p.shape_.nt = shape_.nt * depth;
  p.shape_.ng = 1;
  for (auto& bound : p.frame_bounds_) bound *= depth;
  return p;
}

std::string Partition::describe() const {
  if (layout_ == Layout::Frames) return "frames";
  return "tiles " + std::to_string(tile_ny_) + "x" + std::to_string(tile_nx_);
}

}  // namespace tessera
