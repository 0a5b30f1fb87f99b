#include "steps/inputs/tessera_h5.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>

#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;

std::string dims_text(const std::vector<std::string>& dims) {
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + (dims[i].empty() ? "?" : dims[i]);
  return out + ")";
}

bool is_provenance(const std::string& name) {
  // Per-run attributes with variable names: Slurm's job description, key figures, checkpoints.
  for (const char* prefix : {"step.", "_", "slurm_", "figure_", "tessera_checkpoint_", "survey_"})
    if (name.starts_with(prefix)) return true;
  if (name == "visit_id") return true;  // with survey_name and survey_file, from `tessera survey run`
  const auto& list = TesseraH5::provenance_attributes();
  return std::find(list.begin(), list.end(), name) != list.end();
}

std::optional<ElementType> cube_type(h5::StoredType type) {
  switch (type) {
    case h5::StoredType::Float32: return ElementType::Float32;
    case h5::StoredType::UInt32: return ElementType::UInt32;
    case h5::StoredType::UInt8: return ElementType::UInt8;
    default: return std::nullopt;
  }
}

bool is_integer(h5::StoredType type) {
  switch (type) {
    case h5::StoredType::Int8:
    case h5::StoredType::Int16:
    case h5::StoredType::Int32:
    case h5::StoredType::Int64:
    case h5::StoredType::UInt8:
    case h5::StoredType::UInt16:
    case h5::StoredType::UInt32:
    case h5::StoredType::UInt64: return true;
    default: return false;
  }
}

bool is_number(h5::StoredType type) {
  return is_integer(type) || type == h5::StoredType::Float32 || type == h5::StoredType::Float64;
}

/// The dimensions the writer gives the cubes themselves (engine/src/io/hdf5_writer.cpp).
bool is_cube_dim(const std::string& dim) { return dim == "time" || dim == "y" || dim == "x" || dim == "group"; }

const std::vector<std::string> kCube{"time", "y", "x"};
const std::vector<std::string> kGrouped{"time", "group", "y", "x"};

/// What a file holds, as tessera_h5 reads it.
struct Catalog {
  std::size_t nt = 0, ny = 0, nx = 0, ng = 1;
  struct Cube {
    VarInfo info;
    ElementType type = ElementType::Float32;
    bool grouped = false;
  };
  struct Vector {
    VarInfo info;
    bool integer = false;
  };
  struct Picture {
    VarInfo info;
    std::string dim_y, dim_x;  // dim_y "" for 1D images
    std::size_t ny = 1, nx = 0;
  };
  std::vector<Cube> cubes;
  std::vector<Vector> vectors;  // `time` first when the file's time axis is not a bare index
  std::vector<Picture> images;
};

VarInfo info_of(const h5::File& file, const std::string& name) {
  const std::map<std::string, AttrValue> attributes = file.attributes(name);
  VarInfo info{name, "", ""};
  if (auto it = attributes.find("units"); it != attributes.end())
    if (auto* text = std::get_if<std::string>(&it->second)) info.units = *text;
  if (auto it = attributes.find("long_name"); it != attributes.end())
    if (auto* text = std::get_if<std::string>(&it->second)) info.long_name = *text;
  return info;
}

/// True when the 1D integer variable holds 0, 1, ..., n-1: the index the writer gives a
/// dimension that has no coordinate of its own.
bool is_index(const h5::File& file, const h5::Variable& v) {
  if (!is_integer(v.type) || v.shape.size() != 1) return false;
  const std::vector<std::int64_t> values = file.read_ints(v.name);
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

/// Reads what `file` holds and checks it is a Tessera output with the cubes asked for.
Catalog scan(const h5::File& file, const TesseraH5Params& params) {
  const std::string& path = file.path();
  const std::vector<h5::Variable> variables = file.variables();
  std::map<std::string, const h5::Variable*> by_name;
  std::map<std::string, std::size_t> dim_length;
  for (const auto& v : variables) {
    by_name[v.name] = &v;
    if (v.is_dimension && v.shape.size() == 1) dim_length[v.name] = v.shape[0];
  }
  for (const char* dim : {"time", "y", "x"})
    if (!dim_length.count(dim))
      throw InputError(path + ": not a Tessera output file: it has no '" + dim +
                       "' dimension (tessera_h5 reads the HDF5 files that `tessera run` writes, with cubes over "
                       "(time, y, x))");
  Catalog c;
  c.nt = dim_length.at("time");
  if (c.nt == 0) throw InputError(path + ": the file holds no frames (its time dimension is empty)");
  c.ny = dim_length.at("y");
  c.nx = dim_length.at("x");

  // Cubes: the ones asked for, or every (time, y, x) float32/uint32 variable.
  auto is_cube_shape = [](const h5::Variable& v) { return v.dims == kCube || v.dims == kGrouped; };
  std::set<std::string> chosen;
  if (params.cubes.empty()) {
    for (const auto& v : variables)
      if (v.dims == kCube && (v.type == h5::StoredType::Float32 || v.type == h5::StoredType::UInt32))
        chosen.insert(v.name);
    if (!chosen.count("data")) {
      auto it = by_name.find("data");
      if (it == by_name.end())
        throw InputError(path + ": no 'data' cube (time, y, x) in this Tessera file; name the cubes to read with "
                         "`cubes` if it holds others");
      throw InputError(path + ": variable 'data' is " + h5::to_string(it->second->type) + " over " +
                       dims_text(it->second->dims) + "; expected a float32 cube over (time, y, x)");
    }
  } else {
    for (const std::string& name : params.cubes) {
      if (!chosen.insert(name).second) throw InputError(path + ": cube '" + name + "' is listed twice in cubes");
      auto it = by_name.find(name);
      if (it == by_name.end()) throw InputError(path + ": no variable '" + name + "' (listed in cubes)");
      const h5::Variable& v = *it->second;
      if (!is_cube_shape(v))
        throw InputError(path + ": variable '" + name + "' is over " + dims_text(v.dims) +
                         "; a cube is over (time, y, x) or (time, group, y, x) (listed in cubes)");
      if (!cube_type(v.type))
        throw InputError(path + ": variable '" + name + "' is " + h5::to_string(v.type) +
                         "; cubes are float32, uint32 or uint8 (listed in cubes)");
    }
  }
  for (const auto& v : variables)
    if (chosen.count(v.name)) {
      const bool grouped = v.dims == kGrouped;
      if (grouped) c.ng = dim_length.at("group");
      c.cubes.push_back({info_of(file, v.name), *cube_type(v.type), grouped});
    }

  // The time coordinate is a vector unless it is the writer's bare frame index.
  const h5::Variable& time = *by_name.at("time");
  const VarInfo time_info = info_of(file, "time");
  if (!(is_index(file, time) && time_info.long_name == "frame index"))
    c.vectors.push_back({time_info, is_integer(time.type)});

  for (const auto& v : variables) {
    if (chosen.count(v.name) || is_cube_shape(v) || v.name == "time") continue;
    if (std::find(v.dims.begin(), v.dims.end(), std::string()) != v.dims.end()) continue;  // not netCDF-like
    if (!is_number(v.type)) continue;
    if (v.dims.size() == 1 && v.dims[0] == "time" && v.type != h5::StoredType::Float32) {
      const auto& engine = TesseraH5::engine_vectors();
      if (std::find(engine.begin(), engine.end(), v.name) != engine.end()) continue;
      c.vectors.push_back({info_of(file, v.name), is_integer(v.type)});
    } else if (v.is_dimension) {
      // A dimension's own coordinate: the cubes' are rebuilt by the writer, and so are bare
      // indices; others (e.g. wavelength) are coordinate images.
      if (is_cube_dim(v.name) || is_index(file, v)) continue;
      c.images.push_back({info_of(file, v.name), "", v.name, 1, v.shape[0]});
    } else if (v.dims.size() == 1) {
      c.images.push_back({info_of(file, v.name), "", v.dims[0], 1, v.shape[0]});
    } else if (v.dims.size() == 2) {
      c.images.push_back({info_of(file, v.name), v.dims[0], v.dims[1], v.shape[0], v.shape[1]});
    }
    // Anything else (e.g. a 3D variable that is not a cube asked for) is not read.
  }
  return c;
}

/// A frame range [first, last) of a file of nt frames; throws naming `frames` and the file.
std::pair<std::size_t, std::size_t> frame_range(const TesseraH5Params& params, std::size_t nt) {
  if (params.frames.empty()) return {0, nt};
  const auto first = params.frames[0], last = params.frames[1];
  if (first < 0 || last <= first || static_cast<std::size_t>(last) > nt)
    throw InputError(params.path + ": frames = [" + std::to_string(first) + ", " + std::to_string(last) +
                     ") is not a non-empty range [first, last) within the file's " + std::to_string(nt) + " frames");
  return {static_cast<std::size_t>(first), static_cast<std::size_t>(last)};
}

class TesseraH5Source final : public FrameSource {
 public:
  explicit TesseraH5Source(TesseraH5Params params) : params_(std::move(params)) {}

  std::vector<std::string> units() override {
    open_file();
    return {params_.path};
  }

  UnitHeader read_header(std::size_t unit) override {
    check_unit(unit);
    open_file();
    UnitHeader h;
    h.ny = static_cast<double>(catalog_.ny);
    h.nx = static_cast<double>(catalog_.nx);
    h.values[TesseraH5::frames_index] = static_cast<double>(catalog_.nt);
    h.values[TesseraH5::groups_index] = static_cast<double>(catalog_.ng);
    return h;
  }

  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    if (headers.size() != 1) throw InternalError("tessera_h5: " + std::to_string(headers.size()) + " headers for 1 file");
    open_file();
    const UnitHeader& h = headers[0];
    if (h.ny != static_cast<double>(catalog_.ny) || h.nx != static_cast<double>(catalog_.nx) ||
        h.values[TesseraH5::frames_index] != static_cast<double>(catalog_.nt))
      throw InputError(params_.path + ": the file changed while it was being read (its frame shape differs between ranks)");
    std::tie(first_, last_) = frame_range(params_, catalog_.nt);
    const std::size_t n = last_ - first_;
    FrameOrder out;
    out.units.assign(n, 0);
    out.shape = {n, catalog_.ny, catalog_.nx, catalog_.ng};
    for (const auto& v : catalog_.vectors) {
      FrameVector vector{v.info, std::vector<double>(n), v.integer};
      file_->read_rows(v.info.name, first_, n, std::span<double>(vector.values));
      out.vectors.push_back(std::move(vector));
    }
    arranged_ = true;
    return out;
  }

  std::vector<DataOut> cubes() const override {
    std::vector<DataOut> out;
    for (const auto& c : catalog_.cubes) {
      DataOut cube{DataKind::Cube, c.info, c.type};
      cube.grouped = c.grouped;
      out.push_back(cube);
    }
    return out;
  }

  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    check_unit(unit);
    if (!arranged_ || !file_) throw InternalError("tessera_h5: read_frame before arrange");
    const std::size_t row = first_ + t;
    for (const auto& c : catalog_.cubes) {
      const std::string& name = c.info.name;
      try {
        switch (c.type) {
          case ElementType::Float32: file_->read_rows(name, row, 1, data.frames<float>(name).frame(t)); break;
          case ElementType::UInt32: file_->read_rows(name, row, 1, data.frames<std::uint32_t>(name).frame(t)); break;
          case ElementType::UInt8: file_->read_rows(name, row, 1, data.frames<std::uint8_t>(name).frame(t)); break;
        }
      } catch (const IoError& e) {
        throw InputError(params_.path + ": cannot read frame " + std::to_string(row) + " of cube '" + name +
                         "'; is the file truncated? " + e.what());
      }
    }
  }

  void read_extras(Dataset& data) override {
    if (!arranged_ || !file_) throw InternalError("tessera_h5: read_extras before arrange");
    const std::size_t n = last_ - first_;
    for (const auto& p : catalog_.images) {
      Image image;
      image.info = p.info;
      image.dim_y = p.dim_y;
      image.dim_x = p.dim_x;
      image.ny = p.ny;
      image.nx = p.nx;
      const std::string& name = p.info.name;
      if (p.dim_y == "time" || (p.dim_y.empty() && p.dim_x == "time")) {
        // Per-frame rows (or a 1D image over time): only the frames read.
        if (p.dim_y.empty()) image.nx = n; else image.ny = n;
        image.values.resize(image.ny * image.nx);
        file_->read_rows(name, first_, n, std::span<float>(image.values));
      } else {
        image.values = file_->read_floats(name);
        if (p.dim_x == "time" && n != p.nx) {  // one column per frame
          std::vector<float> kept(p.ny * n);
          for (std::size_t y = 0; y < p.ny; ++y)
            std::copy_n(image.values.begin() + static_cast<std::ptrdiff_t>(y * p.nx + first_), n,
                        kept.begin() + static_cast<std::ptrdiff_t>(y * n));
          image.values = std::move(kept);
          image.nx = n;
        }
      }
      data.images()[name] = std::move(image);
    }
    for (auto& [key, value] : file_->attributes())
      if (!is_provenance(key)) data.attributes()[key] = std::move(value);
    file_.reset();  // every frame of this rank has been read
  }

  std::vector<DataOut> provides() const override {
    std::error_code ec;
    if (!fs::is_regular_file(params_.path, ec)) return assumed();
    const h5::File file = open_checked(params_.path);
    const Catalog c = scan(file, params_);
    std::vector<DataOut> out;
    for (const auto& cube : c.cubes) {
      DataOut d{DataKind::Cube, cube.info, cube.type};
      d.grouped = cube.grouped;
      out.push_back(d);
    }
    for (const auto& v : c.vectors) {
      DataOut d{DataKind::FrameVector, v.info};
      d.integer = v.integer;
      out.push_back(d);
    }
    for (const auto& p : c.images) {
      DataOut d{DataKind::Image, p.info};
      d.dim_y = p.dim_y;
      d.dim_x = p.dim_x;
      d.image_ny = p.dim_y == "time" ? DataOut::frames : p.ny;
      d.image_nx = p.dim_x == "time" ? DataOut::frames : p.nx;
      d.combine = Combine::Identical;
      out.push_back(d);
    }
    return out;
  }

 private:
  static h5::File open_checked(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec))
      throw InputError(path + ": no such file (tessera_h5 reads a Tessera output .h5 file; has the workflow that "
                       "writes it run?)");
    if (!fs::is_regular_file(path, ec)) throw InputError(path + ": not a file (tessera_h5 reads one .h5 file)");
    try {
      return h5::File::open(path);
    } catch (const IoError& e) {
      throw InputError(path + ": not an HDF5 file, or unreadable (tessera_h5 reads the HDF5 files that `tessera run` "
                       "writes): " + e.what());
    }
  }

  /// Opens the file and reads its catalog, once; the handle stays open for the frames.
  void open_file() {
    if (file_) return;
    if (arranged_) throw InternalError("tessera_h5: the file was closed after read_extras");
    file_.emplace(open_checked(params_.path));
    try {
      catalog_ = scan(*file_, params_);
    } catch (const IoError& e) {
      file_.reset();
      throw InputError(e.what());
    } catch (...) {
      file_.reset();
      throw;
    }
  }

  void check_unit(std::size_t unit) const {
    if (unit != 0) throw InternalError("tessera_h5: unit " + std::to_string(unit) + " of 1");
  }

  /// Before the file exists (validating a workflow whose upstream workflow has not run yet):
  /// what a JWST detector1 rate file holds, or the cubes listed.
  std::vector<DataOut> assumed() const {
    std::vector<DataOut> out;
    const std::vector<std::string> names =
        params_.cubes.empty() ? std::vector<std::string>{"data", "err", "dq", "var_poisson", "var_rnoise"} : params_.cubes;
    for (const auto& name : names)
      out.push_back({DataKind::Cube, {name, "", ""}, name == "dq" ? ElementType::UInt32 : ElementType::Float32});
    for (const char* name : {"time", "int_start", "int_end", "int_mid_bjd"})
      out.push_back({DataKind::FrameVector, {name, "d", ""}});
    for (const char* name : {"integration", "segment"}) {
      DataOut d{DataKind::FrameVector, {name, "1", ""}};
      d.integer = true;
      out.push_back(d);
    }
    return out;
  }

  TesseraH5Params params_;
  std::optional<h5::File> file_;  // open from units() until read_extras()
  Catalog catalog_;
  std::size_t first_ = 0, last_ = 0;  // frames of the file read
  bool arranged_ = false;
};

}  // namespace

const std::vector<std::string>& TesseraH5::provenance_attributes() {
  static const std::vector<std::string> names = {
      "tessera_version", "tessera_git_commit", "workflow_file", "workflow_name",      "workflow_description",
      "workflow_toml",   "resolved_workflow",  "mpi_ranks",     "start_utc",          "end_utc",
      "input_kind",      "workflow_overrides", "hosts",        "workflow_hash",      "completed_utc",
      "resumed_after",   "tessera_complete"};
  return names;
}

const std::vector<std::string>& TesseraH5::engine_vectors() {
  static const std::vector<std::string> names = {"nonfinite_input"};
  return names;
}

Schema<TesseraH5Params> TesseraH5Params::schema() {
  using P = TesseraH5Params;
  return tessera::schema<P>(
      field(&P::path, "path",
            "The Tessera output file to read (the .h5 that `tessera run` wrote), e.g. "
            "\"{workflow.visit}/outputs/detector1/rateints.h5\"",
            Required{}),
      field(&P::cubes, "cubes",
            "Cubes to read, by name (e.g. [\"data\", \"err\", \"dq\"]; grouped (time, group, y, x) cubes such as "
            "\"ramp\" only when listed); empty: every float32 or uint32 cube over (time, y, x), which must include "
            "\"data\""),
      field(&P::frames, "frames",
            "Frames (integrations) to read, [first, last) 0-based (e.g. [0, 100]); empty: all. Per-frame vectors and "
            "images over time are cut to the same range",
            Range::at_least(0)));
}

std::unique_ptr<FrameSource> TesseraH5::open(const Params& params) {
  if (!params.frames.empty() && params.frames.size() != 2)
    throw ConfigError("[input] frames: expected two numbers [first, last), got " + std::to_string(params.frames.size()));
  return std::make_unique<TesseraH5Source>(params);
}

}  // namespace tessera
