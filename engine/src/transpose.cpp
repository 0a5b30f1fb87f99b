#include "tessera/transpose.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "tessera/errors.hpp"

// How a redistribution runs. Every rank builds the same Plan from the two partitions (no
// communication), agrees on the number of rounds with one MPI_Allreduce, and then moves the
// cubes one after the other, each in `rounds` calls of MPI_Alltoallv. Two frame partitions of
// one cube are always equal, so frames -> frames never gets past the no-op check.
//
// Frames <-> tiles: round k moves pixels [kG, (k+1)G) of every tiles-side rank's storage,
// with all their frames. Every rank sends and receives in every round, the tiles side reads
// or writes one contiguous stretch of its storage per round, and the frames side a band of
// each of its frames.
//
// Tiles -> tiles: round k moves samples [kF, (k+1)F) of every pixel that changes rank.
// Windows over time rather than over pixels keep every rank's share of a round bounded
// whatever the two tile shapes are (windows over the receivers' pixels can make one rank send
// P windows' worth in a round when tile shapes cross, e.g. rows against columns).
//
// Messages are laid out in the tiles side's storage order, one pixel's samples after the
// other, so the strided (t, y, x) <-> (pixel, t) reordering happens once, on the frames side,
// in cache-sized blocks. A rank's own share never goes through a buffer or MPI: it is copied
// straight from old storage to new, so one rank needs no buffers at all.

namespace tessera {
namespace {

// The strided loops work on blocks of kBlock pixels of one image row and kGroup frames at a
// time: each pixel then gets kGroup consecutive samples (a vector store or load), only kGroup
// frame rows are streamed at once, and a block's series (kBlock × a rank's frames) fit in L2.
constexpr std::size_t kBlock = 256;
constexpr std::size_t kGroup = 8;

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw IoError(std::string(call) + " failed during a transpose: " + std::string(text, static_cast<std::size_t>(length)));
}

template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return MPI_UINT32_T;
  else {
    static_assert(std::is_same_v<T, std::uint8_t>, "cubes are float32, uint32 or uint8");
    return MPI_UINT8_T;
  }
}

bool same_distribution(const Partition& a, const Partition& b) {
  if (a.layout() != b.layout()) return false;
  if (a.layout() == Layout::Frames) {
    for (int r = 0; r < a.nranks(); ++r)
      if (a.frame_begin(r) != b.frame_begin(r) || a.frame_end(r) != b.frame_end(r)) return false;
    return true;
  }
  if (a.tiles() != b.tiles()) return false;
  for (std::size_t i = 0; i < a.tiles().size(); ++i)
    if (a.tile_owner(i) != b.tile_owner(i)) return false;
  return true;
}

/// [begin, begin + count): a round's share of `total` pixels or samples, `per_round` at a time.
struct Window {
  std::size_t begin = 0, count = 0;
};
Window window(std::size_t k, std::size_t per_round, std::size_t total) {
  const std::size_t begin = std::min(k * per_round, total);
  return {begin, std::min(per_round, total - begin)};
}

/// Copies `length` pixels of one image row, starting at offset `at` in each of `count`
/// consecutive frames, into series: pixel i's samples go to out[i*stride, i*stride + count).
template <class T>
void gather_run(const T* frames, std::size_t frame_pixels, std::size_t count, std::size_t at, std::size_t length,
                T* out, std::size_t stride) {
  for (std::size_t xb = 0; xb < length; xb += kBlock) {
    const std::size_t block = std::min(kBlock, length - xb);
    const T* src = frames + at + xb;
    T* dst = out + xb * stride;
    std::size_t t = 0;
    for (; t + kGroup <= count; t += kGroup)
      for (std::size_t x = 0; x < block; ++x)
        for (std::size_t g = 0; g < kGroup; ++g) dst[x * stride + t + g] = src[(t + g) * frame_pixels + x];
    for (; t < count; ++t)
      for (std::size_t x = 0; x < block; ++x) dst[x * stride + t] = src[t * frame_pixels + x];
  }
}

/// The inverse of gather_run.
template <class T>
void scatter_run(const T* in, std::size_t stride, std::size_t count, std::size_t at, std::size_t length, T* frames,
                 std::size_t frame_pixels) {
  for (std::size_t xb = 0; xb < length; xb += kBlock) {
    const std::size_t block = std::min(kBlock, length - xb);
    const T* src = in + xb * stride;
    T* dst = frames + at + xb;
    std::size_t t = 0;
    for (; t + kGroup <= count; t += kGroup)
      for (std::size_t x = 0; x < block; ++x)
        for (std::size_t g = 0; g < kGroup; ++g) dst[(t + g) * frame_pixels + x] = src[x * stride + t + g];
    for (; t < count; ++t)
      for (std::size_t x = 0; x < block; ++x) dst[t * frame_pixels + x] = src[x * stride + t];
  }
}

/// Copies `count` samples of each of `pixels` series from one spacing of series to another.
template <class T>
void copy_series(const T* from, std::size_t from_stride, T* to, std::size_t to_stride, std::size_t pixels,
                 std::size_t count) {
  if (from_stride == count && to_stride == count) {
    std::copy_n(from, pixels * count, to);
    return;
  }
  for (std::size_t p = 0; p < pixels; ++p) std::copy_n(from + p * from_stride, count, to + p * to_stride);
}

/// Who sends what to whom in each round: the same on every rank, and independent of the cube.
/// Counts are in elements; pack/unpack handle other ranks, keep() this rank's own share.
class Plan {
 public:
  Plan(const Partition& from, const Partition& to, int rank, std::size_t chunk_bytes)
      : shape_(from.shape()), rank_(rank), nranks_(from.nranks()) {
    if (from.layout() == Layout::Frames)
      kind_ = Kind::FramesToTiles;
    else
      kind_ = to.layout() == Layout::Frames ? Kind::TilesToFrames : Kind::TilesToTiles;
    if (kind_ == Kind::TilesToTiles)
      build_routes(from, to);
    else
      build_frames_tiles(kind_ == Kind::FramesToTiles ? from : to, kind_ == Kind::FramesToTiles ? to : from);
    choose_round_size(chunk_bytes);
  }

  /// Rounds this rank needs to send and receive all it has to.
  std::size_t rounds_needed() const {
    if (per_round_ == 0) return 0;
    return ceil_div(kind_ == Kind::TilesToTiles ? shape_.nt : pixels_[rank_], per_round_);
  }

  std::size_t send_count(std::size_t k, int peer) const {
    switch (kind_) {
      case Kind::FramesToTiles: return frame_count_[rank_] * pixel_window(k, peer).count;
      case Kind::TilesToFrames: return frame_count_[peer] * pixel_window(k, rank_).count;
      default: return sample_window(k).count * send_routes_[peer].size();
    }
  }
  std::size_t recv_count(std::size_t k, int peer) const {
    switch (kind_) {
      case Kind::FramesToTiles: return frame_count_[peer] * pixel_window(k, rank_).count;
      case Kind::TilesToFrames: return frame_count_[rank_] * pixel_window(k, peer).count;
      default: return sample_window(k).count * recv_routes_[peer].size();
    }
  }

  /// Writes what this rank sends to `peer` in round k, read from its old storage.
  template <class T>
  void pack(std::size_t k, int peer, const T* old, T* out) const {
    const std::size_t nt = shape_.nt, fp = shape_.frame_pixels();
    if (kind_ == Kind::FramesToTiles) {
      const std::size_t n = frame_count_[rank_];
      for_each_run(peer, pixel_window(k, peer), [&](std::size_t at, std::size_t length, std::size_t i) {
        gather_run(old, fp, n, at, length, out + i * n, n);
      });
    } else if (kind_ == Kind::TilesToFrames) {
      const Window w = pixel_window(k, rank_);
      const std::size_t n = frame_count_[peer];
      copy_series(old + w.begin * nt + frame_begin_[peer], nt, out, n, w.count, n);
    } else {
      const Window w = sample_window(k);
      const std::vector<std::size_t>& route = send_routes_[peer];
      for (std::size_t i = 0; i < route.size(); ++i) std::copy_n(old + route[i] * nt + w.begin, w.count, out + i * w.count);
    }
  }

  /// Stores what this rank received from `peer` in round k into its new storage.
  template <class T>
  void unpack(std::size_t k, int peer, const T* in, T* fresh) const {
    const std::size_t nt = shape_.nt, fp = shape_.frame_pixels();
    if (kind_ == Kind::FramesToTiles) {
      const Window w = pixel_window(k, rank_);
      const std::size_t n = frame_count_[peer];
      copy_series(in, n, fresh + w.begin * nt + frame_begin_[peer], nt, w.count, n);
    } else if (kind_ == Kind::TilesToFrames) {
      const std::size_t n = frame_count_[rank_];
      for_each_run(peer, pixel_window(k, peer), [&](std::size_t at, std::size_t length, std::size_t i) {
        scatter_run(in + i * n, n, n, at, length, fresh, fp);
      });
    } else {
      const Window w = sample_window(k);
      const std::vector<std::size_t>& route = recv_routes_[peer];
      for (std::size_t i = 0; i < route.size(); ++i) std::copy_n(in + i * w.count, w.count, fresh + route[i] * nt + w.begin);
    }
  }

  /// Copies this rank's own share of round k from old to new storage, without a buffer.
  template <class T>
  void keep(std::size_t k, const T* old, T* fresh) const {
    const std::size_t nt = shape_.nt, fp = shape_.frame_pixels();
    if (kind_ == Kind::TilesToTiles) {
      const Window w = sample_window(k);
      const std::vector<std::size_t>& from = send_routes_[rank_];
      const std::vector<std::size_t>& to = recv_routes_[rank_];
      for (std::size_t i = 0; i < from.size(); ++i) std::copy_n(old + from[i] * nt + w.begin, w.count, fresh + to[i] * nt + w.begin);
      return;
    }
    const Window w = pixel_window(k, rank_);
    const std::size_t n = frame_count_[rank_], t0 = frame_begin_[rank_];
    if (n == 0) return;
    for_each_run(rank_, w, [&](std::size_t at, std::size_t length, std::size_t i) {
      if (kind_ == Kind::FramesToTiles)
        gather_run(old, fp, n, at, length, fresh + (w.begin + i) * nt + t0, nt);
      else
        scatter_run(old + (w.begin + i) * nt + t0, nt, n, at, length, fresh, fp);
    });
  }

 private:
  enum class Kind { FramesToTiles, TilesToFrames, TilesToTiles };

  // Frames <-> tiles: frame slabs on one side, tiles on the other.
  void build_frames_tiles(const Partition& frames, const Partition& tiles) {
    for (int r = 0; r < nranks_; ++r) {
      frame_begin_.push_back(frames.frame_begin(r));
      frame_count_.push_back(frames.frame_end(r) - frames.frame_begin(r));
    }
    tiles_ = tiles.tiles();
    tiles_of_.resize(nranks_);
    tile_start_.resize(nranks_);
    pixels_.assign(nranks_, 0);
    for (std::size_t i = 0; i < tiles_.size(); ++i) {
      const auto owner = static_cast<std::size_t>(tiles.tile_owner(i));
      tiles_of_[owner].push_back(i);
      tile_start_[owner].push_back(pixels_[owner]);
      pixels_[owner] += tiles_[i].pixels();
    }
    // Per pixel of window, a tiles-side rank receives (or sends) the series samples of the
    // frames other ranks hold; a frames-side rank sends (or receives) its frames' samples of
    // every other tiles rank's window. Its own share is copied, not buffered.
    const auto tile_ranks = static_cast<std::size_t>(
        std::count_if(pixels_.begin(), pixels_.end(), [](std::size_t p) { return p > 0; }));
    for (int r = 0; r < nranks_; ++r) {
      const std::size_t others = tile_ranks - (pixels_[r] > 0 ? 1 : 0);
      per_unit_ = std::max({per_unit_, shape_.nt - frame_count_[r], frame_count_[r] * others});
    }
    most_units_ = *std::max_element(pixels_.begin(), pixels_.end());
  }

  // Tiles -> tiles: for every peer, the pixels (as series indices in local storage) this rank
  // sends to it and receives from it, both in the receiver's storage order.
  void build_routes(const Partition& from, const Partition& to) {
    send_routes_.resize(nranks_);
    recv_routes_.resize(nranks_);
    // Series index of the first pixel of each of this rank's old tiles.
    const std::vector<Tile>& old_tiles = from.tiles();
    std::vector<std::size_t> old_offset(old_tiles.size(), 0);
    std::size_t offset = 0;
    for (std::size_t i : from.local_tiles(rank_)) {
      old_offset[i] = offset;
      offset += old_tiles[i].pixels();
    }
    // Old tiles are a row-major grid (Partition::tiles), so a pixel's old tile is arithmetic.
    // Every rank also counts the pixels that leave and arrive at each rank: per sample of a
    // round's window, a rank sends one sample of each pixel leaving it and receives one of each
    // pixel arriving.
    const std::size_t old_columns = ceil_div(shape_.nx, from.tile_nx());
    std::vector<std::size_t> leaving(nranks_, 0), arriving(nranks_, 0);
    std::size_t fresh_index = 0;
    for (std::size_t j = 0; j < to.tiles().size(); ++j) {
      const Tile& tile = to.tiles()[j];
      const int receiver = to.tile_owner(j);
      for (std::size_t y = tile.y0; y < tile.y1; ++y)
        for (std::size_t x = tile.x0; x < tile.x1; ++x) {
          const std::size_t i = (y / from.tile_ny()) * old_columns + x / from.tile_nx();
          const int sender = from.tile_owner(i);
          if (sender == rank_) {
            const Tile& o = old_tiles[i];
            send_routes_[receiver].push_back(old_offset[i] + (y - o.y0) * o.width() + (x - o.x0));
          }
          if (receiver == rank_) recv_routes_[sender].push_back(fresh_index++);
          if (sender != receiver) {
            ++leaving[sender];
            ++arriving[receiver];
          }
        }
    }
    for (int r = 0; r < nranks_; ++r) per_unit_ = std::max({per_unit_, leaving[r], arriving[r]});
    most_units_ = shape_.nt;
  }

  // Picks the pixels (or samples) per round so that no rank's send or receive buffer in a
  // round exceeds chunk_bytes (unless one unit alone does) nor INT_MAX elements. When no
  // element changes rank (one rank), everything is copied in one round.
  void choose_round_size(std::size_t chunk_bytes) {
    if (shape_.elements() == 0) return;  // nothing to move: no rounds
    if (per_unit_ == 0) {
      per_round_ = std::max<std::size_t>(most_units_, 1);
      return;
    }
    const auto int_max = static_cast<std::size_t>(INT_MAX);
    if (per_unit_ > int_max)
      throw InternalError("a transpose round of " + std::to_string(per_unit_) +
                          " elements per rank is more than an MPI count can hold");
    per_round_ = std::clamp<std::size_t>(chunk_bytes / (4 * per_unit_), 1, int_max / per_unit_);
  }

  /// Calls fn(at, length, i) for each stretch of `rank`'s tile pixels [w.begin, w.begin + w.count)
  /// (in its storage order) that lies in one image row: `at` is the stretch's offset in a
  /// frame, `i` its first pixel's index relative to w.begin.
  template <class Fn>
  void for_each_run(int rank, Window w, Fn&& fn) const {
    if (w.count == 0) return;
    const std::vector<std::size_t>& starts = tile_start_[rank];
    // The last tile that starts at or before the window.
    auto j = static_cast<std::size_t>(std::upper_bound(starts.begin(), starts.end(), w.begin) - starts.begin()) - 1;
    const std::size_t end = w.begin + w.count;
    std::size_t p = w.begin;
    while (p < end) {
      const Tile& tile = tiles_[tiles_of_[rank][j]];
      const std::size_t i = p - starts[j];
      if (i >= tile.pixels()) {
        ++j;
        continue;
      }
      const std::size_t width = tile.width(), y = tile.y0 + i / width, x = tile.x0 + i % width;
      const std::size_t length = std::min(width - i % width, end - p);
      fn(y * shape_.nx + x, length, p - w.begin);
      p += length;
    }
  }

  Window pixel_window(std::size_t k, int rank) const { return window(k, per_round_, pixels_[rank]); }
  Window sample_window(std::size_t k) const { return window(k, per_round_, shape_.nt); }

  CubeShape shape_;
  int rank_ = 0, nranks_ = 1;
  Kind kind_ = Kind::FramesToTiles;
  // Most elements any rank sends or receives per pixel (frames <-> tiles) or sample (tiles ->
  // tiles) of a round, from the partitions alone so that every rank agrees on it.
  std::size_t per_unit_ = 0;
  std::size_t most_units_ = 0;  // most pixels (or samples) any rank has to go through
  std::size_t per_round_ = 0;  // pixels or samples per round; 0 when there is nothing to move
  // Frames <-> tiles.
  std::vector<std::size_t> frame_begin_, frame_count_;  // per rank, frames side
  std::vector<Tile> tiles_;
  std::vector<std::vector<std::size_t>> tiles_of_;    // per rank, tiles side, ascending
  std::vector<std::vector<std::size_t>> tile_start_;  // per rank: first local pixel of each of its tiles
  std::vector<std::size_t> pixels_;                   // per rank, tiles side
  // Tiles -> tiles.
  std::vector<std::vector<std::size_t>> send_routes_, recv_routes_;
};

int as_count(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX)) throw InternalError("a transpose round exceeds an MPI count");
  return static_cast<int>(n);
}

/// Asks the kernel for transparent huge pages for a large, not yet touched allocation:
/// faulting in a cube 4 KiB at a time costs about as much as moving it. Only a hint.
void prefer_huge_pages([[maybe_unused]] const void* data, [[maybe_unused]] std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto first = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t begin = (first + kHuge - 1) & ~(kHuge - 1), end = (first + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

/// A zeroed vector of n elements, on huge pages where the kernel grants them.
template <class T>
std::vector<T> new_storage(std::size_t n) {
  std::vector<T> v;
  v.reserve(n);
  prefer_huge_pages(v.data(), n * sizeof(T));
  v.resize(n);
  return v;
}

/// MPI_Alltoallv arguments of one round, this rank's own share left out (Plan::keep moves it).
struct Counts {
  std::vector<int> send_counts, send_displs, recv_counts, recv_displs;
  std::size_t send_total = 0, recv_total = 0;
};

Counts round_counts(const Plan& plan, std::size_t k, int rank, int nranks) {
  Counts c;
  for (int q = 0; q < nranks; ++q) {
    const std::size_t out = q == rank ? 0 : plan.send_count(k, q);
    const std::size_t in = q == rank ? 0 : plan.recv_count(k, q);
    c.send_displs.push_back(as_count(c.send_total));
    c.send_counts.push_back(as_count(out));
    c.recv_displs.push_back(as_count(c.recv_total));
    c.recv_counts.push_back(as_count(in));
    c.send_total += out;
    c.recv_total += in;
  }
  as_count(c.send_total);
  as_count(c.recv_total);
  return c;
}

/// Moves one cube's local storage in `rounds` rounds; returns the elements sent to other ranks.
template <class T>
std::size_t move_cube(std::vector<T>& values, std::size_t fresh_size, const Plan& plan, std::size_t rounds, int rank,
                      int nranks, MPI_Comm comm) {
  // Buffers sized once for the largest round, left uninitialised: packing overwrites them.
  std::size_t send_size = 0, recv_size = 0;
  for (std::size_t k = 0; k < rounds; ++k) {
    const Counts c = round_counts(plan, k, rank, nranks);
    send_size = std::max(send_size, c.send_total);
    recv_size = std::max(recv_size, c.recv_total);
  }
  auto send = std::make_unique_for_overwrite<T[]>(send_size);
  auto recv = std::make_unique_for_overwrite<T[]>(recv_size);
  prefer_huge_pages(send.get(), send_size * sizeof(T));
  prefer_huge_pages(recv.get(), recv_size * sizeof(T));
  std::vector<T> fresh = new_storage<T>(fresh_size);
  std::size_t sent = 0;
  for (std::size_t k = 0; k < rounds; ++k) {
    const Counts c = round_counts(plan, k, rank, nranks);
    for (int q = 0; q < nranks; ++q)
      if (c.send_counts[q] > 0) plan.pack(k, q, values.data(), send.get() + c.send_displs[q]);
    check_mpi(MPI_Alltoallv(send.get(), c.send_counts.data(), c.send_displs.data(), mpi_type<T>(), recv.get(),
                            c.recv_counts.data(), c.recv_displs.data(), mpi_type<T>(), comm),
              "MPI_Alltoallv");
    plan.keep(k, values.data(), fresh.data());
    for (int q = 0; q < nranks; ++q)
      if (c.recv_counts[q] > 0) plan.unpack(k, q, recv.get() + c.recv_displs[q], fresh.data());
    sent += c.send_total;
  }
  values = std::move(fresh);  // frees the old storage before the next cube moves
  return sent;
}

}  // namespace

TransposeStats redistribute(Dataset& data, const Partition& target, MPI_Comm comm, std::size_t chunk_bytes) {
  const double start = MPI_Wtime();
  int rank = 0, nranks = 1;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &nranks), "MPI_Comm_size");
  const Partition& from = data.partition();
  // Checks that give the same answer on every rank may throw before any collective call.
  if (from.nranks() != nranks || target.nranks() != nranks)
    throw InternalError("transpose: partitions for " + std::to_string(from.nranks()) + " and " +
                        std::to_string(target.nranks()) + " ranks on a communicator of " + std::to_string(nranks));
  if (!(from.shape() == data.shape()) || !(target.shape() == data.shape()))
    throw InternalError("transpose: the target partition is for a cube of another shape");
  TransposeStats stats;
  if (same_distribution(from, target)) {
    data.set_partition(target);
    stats.seconds = MPI_Wtime() - start;
    return stats;
  }

  // A grouped cube moves as an ungrouped one of nt·ng frames (Partition::with_depth): one
  // plan per depth present, built the same on every rank.
  std::vector<std::size_t> depths;
  for (const auto& [name, cube] : data.cubes()) {
    const std::size_t d = cube.depth(data.shape());
    if (std::find(depths.begin(), depths.end(), d) == depths.end()) depths.push_back(d);
  }
  std::vector<Plan> plans;
  for (std::size_t d : depths) plans.emplace_back(from.with_depth(d), target.with_depth(d), rank, chunk_bytes);
  // Checks that could differ between ranks travel with the round count in one all-reduce, so
  // that either every rank goes on or every rank throws. max(~x) is ~min(x): comparing the
  // max of x with the max of ~x tells whether all ranks passed the same x.
  std::string problem;
  if (data.rank() != rank)
    problem = "the dataset belongs to rank " + std::to_string(data.rank()) + ", not " + std::to_string(rank);
  for (const auto& [name, cube] : data.cubes()) {
    const std::size_t size = std::visit([](const auto& values) { return values.size(); }, cube.values);
    const std::size_t expected = data.local_elements(cube);
    if (size != expected)
      problem = "cube '" + name + "' holds " + std::to_string(size) + " elements on rank " + std::to_string(rank) +
                ", its partition says " + std::to_string(expected);
  }
  using Word = unsigned long long;
  const std::size_t np = plans.size();
  const Word cubes = data.cubes().size(), chunk = chunk_bytes;
  std::vector<Word> mine = {problem.empty() ? Word{0} : Word{1}, chunk, ~chunk, cubes, ~cubes, np, ~Word{np}};
  for (const Plan& plan : plans) mine.push_back(plan.rounds_needed());
  const int words = static_cast<int>(mine.size());
  std::vector<Word> agreed(mine.size(), 0);
  check_mpi(MPI_Allreduce(mine.data(), agreed.data(), words, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
  if (agreed[0] != 0)
    throw InternalError("transpose: " + (problem.empty() ? "a cube on another rank does not match its partition" : problem));
  if (agreed[1] != ~agreed[2]) throw InternalError("transpose: ranks passed different chunk sizes");
  if (agreed[3] != ~agreed[4]) throw InternalError("transpose: ranks hold different numbers of cubes");
  if (agreed[5] != ~agreed[6]) throw InternalError("transpose: ranks hold cubes of different depths");

  for (auto& [name, cube] : data.cubes()) {
    const std::size_t d = cube.depth(data.shape());
    const std::size_t k = static_cast<std::size_t>(std::find(depths.begin(), depths.end(), d) - depths.begin());
    const std::size_t rounds = agreed[7 + k];
    const std::size_t fresh_size = target.local_elements(rank) * d;
    auto move = [&](auto& values) {
      using T = typename std::decay_t<decltype(values)>::value_type;
      return sizeof(T) * move_cube(values, fresh_size, plans[k], rounds, rank, nranks, comm);
    };
    stats.bytes_sent_to_other_ranks += std::visit(move, cube.values);
    stats.chunks += rounds;
  }
  data.set_partition(target);
  stats.seconds = MPI_Wtime() - start;
  return stats;
}

}  // namespace tessera
