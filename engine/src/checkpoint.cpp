#include "tessera/checkpoint.hpp"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "tessera/collective.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/io/hdf5_writer.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;

// Root attributes of a checkpoint file. The manifest lists what the state holds, one
// tab-separated line per item, so that restoring needs no guessing from the netCDF layout
// (which index coordinates are products, which vectors are integers, which cubes grouped).
constexpr const char* kStepAttr = "tessera_checkpoint_step";
constexpr const char* kPositionAttr = "tessera_checkpoint_position";
constexpr const char* kHashAttr = "tessera_checkpoint_hash";
constexpr const char* kManifestAttr = "tessera_checkpoint_manifest";

std::string manifest(const Dataset& data) {
  std::ostringstream out;
  const CubeShape& s = data.shape();
  out << "shape\t" << s.nt << '\t' << s.ng << '\t' << s.ny << '\t' << s.nx << '\n';
  for (const auto& [name, cube] : data.cubes())
    out << "cube\t" << name << '\t' << static_cast<int>(cube.type()) << '\t' << (cube.grouped ? 1 : 0) << '\n';
  for (const auto& [name, vector] : data.frame_vectors()) out << "vector\t" << name << '\t' << (vector.integer ? 1 : 0) << '\n';
  for (const auto& [name, image] : data.images())
    out << "image\t" << name << '\t' << image.ny << '\t' << image.nx << '\t' << image.dim_y << '\t' << image.dim_x << '\n';
  for (const auto& [name, value] : data.attributes()) out << "attribute\t" << name << '\n';
  return out.str();
}

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = line.find(separator, start);
    fields.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return fields;
    start = end + 1;
  }
}

VarInfo info_of(const h5::File& file, const std::string& name) {
  auto attrs = file.attributes(name);
  auto text = [&](const char* key) {
    auto it = attrs.find(key);
    return it != attrs.end() && std::holds_alternative<std::string>(it->second) ? std::get<std::string>(it->second)
                                                                                : std::string();
  };
  return {name, text("units"), text("long_name")};
}

std::string attribute_text(const h5::File& file, const char* name) {
  const AttrValue value = file.read_attribute(name);
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  throw IoError(file.path() + ": attribute " + name + " is not a string");
}

/// Reads this rank's frames of a cube into its storage.
void read_cube_frames(const h5::File& file, const std::string& name, CubeVariable& cube, std::size_t t0,
                      std::size_t t1) {
  if (t1 <= t0) return;
  std::visit([&](auto& values) { file.read_rows(name, t0, t1 - t0, std::span(values)); }, cube.values);
}

}  // namespace

std::string stable_hash(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis and prime (Fowler, Noll, Vo)
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::string input_hash(const Workflow& wf) {
  std::string text = "input " + wf.input_kind + "\n";
  if (wf.input)
    for (const auto& [k, v] : wf.input->resolved_params) text += k + " = " + v + "\n";
  return stable_hash(text);
}

std::vector<std::string> step_chain_hashes(const Workflow& wf) {
  std::vector<std::string> chain;
  std::string previous = input_hash(wf);
  for (std::size_t index : wf.order) {
    const WorkflowStep& step = wf.steps[index];
    // The step's id is left out: renaming a step does not change what it computes.
    std::string text = previous + "\nstep " + step.uses + "\n";
    if (step.instance)
      for (const auto& [k, v] : step.instance->resolved_params()) text += k + " = " + v + "\n";
    previous = stable_hash(text);
    chain.push_back(previous);
  }
  return chain;
}

std::string workflow_hash(const Workflow& wf) {
  const auto chain = step_chain_hashes(wf);
  return chain.empty() ? input_hash(wf) : chain.back();
}

std::string checkpoint_directory(const std::string& output_path) {
  fs::path p(output_path);
  return (p.parent_path() / (p.stem().string() + ".checkpoints")).string();
}

std::string checkpoint_path(const std::string& output_path, std::size_t position, const std::string& step_id) {
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%02zu_", position);
  return (fs::path(checkpoint_directory(output_path)) / (prefix + step_id + ".h5")).string();
}

void write_checkpoint(const Dataset& data, const CheckpointInfo& info, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  collectively(comm, [&] {
    if (rank != 0) return;
    std::error_code ec;
    fs::create_directories(fs::path(info.path).parent_path(), ec);
    if (ec) throw IoError(info.path + ": cannot create the checkpoint directory: " + ec.message());
  });
  write_dataset_hdf5(data, info.path, comm,
                     {{kStepAttr, info.step_id},
                      {kPositionAttr, static_cast<std::int64_t>(info.position)},
                      {kHashAttr, info.hash},
                      {kManifestAttr, manifest(data)}});
}

std::optional<CheckpointInfo> read_checkpoint_info(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  try {
    const h5::File file = h5::File::open(path);
    CheckpointInfo info;
    info.path = path;
    info.step_id = attribute_text(file, kStepAttr);
    info.hash = attribute_text(file, kHashAttr);
    const AttrValue position = file.read_attribute(kPositionAttr);
    if (!std::holds_alternative<std::int64_t>(position)) return std::nullopt;
    info.position = static_cast<std::size_t>(std::get<std::int64_t>(position));
    attribute_text(file, kManifestAttr);
    return info;
  } catch (const Error&) {
    return std::nullopt;
  }
}

Dataset read_checkpoint(const std::string& path, MPI_Comm comm) {
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  Dataset data;
  collectively(comm, [&] {
    const h5::File file = h5::File::open(path);
    std::istringstream lines(attribute_text(file, kManifestAttr));
    std::string line;
    const auto root = file.attributes();
    while (std::getline(lines, line)) {
      const auto f = split(line, '\t');
      const auto number = [&](std::size_t i) { return static_cast<std::size_t>(std::stoull(f.at(i))); };
      if (f[0] == "shape") {
        const CubeShape shape{number(1), number(3), number(4), number(2)};
        data = Dataset(shape, Partition::frames(shape, nranks), rank);
      } else if (f[0] == "cube") {
        data.add_cube(info_of(file, f[1]), static_cast<ElementType>(number(2)), 0.0, number(3) == 1);
        const Partition& p = data.partition();
        read_cube_frames(file, f[1], data.cube(f[1]), p.frame_begin(rank), p.frame_end(rank));
      } else if (f[0] == "vector") {
        FrameVector& v = data.add_frame_vector(info_of(file, f[1]), number(2) == 1);
        v.values = file.read_doubles(f[1]);
      } else if (f[0] == "image") {
        Image image;
        image.info = info_of(file, f[1]);
        image.ny = number(2);
        image.nx = number(3);
        image.dim_y = f.at(4);
        image.dim_x = f.at(5);
        image.values = file.read_floats(f[1]);
        data.images()[f[1]] = std::move(image);
      } else if (f[0] == "attribute") {
        auto it = root.find(f[1]);
        if (it == root.end()) throw IoError(path + ": checkpoint attribute '" + f[1] + "' is missing");
        data.attributes()[f[1]] = it->second;
      } else {
        throw IoError(path + ": unreadable checkpoint manifest line '" + line + "'");
      }
    }
  });
  return data;
}

bool output_is_complete(const std::string& output_path, const std::string& hash) {
  std::error_code ec;
  if (!fs::is_regular_file(output_path, ec)) return false;
  try {
    const h5::File file = h5::File::open(output_path);
    const auto attrs = file.attributes();
    auto complete = attrs.find("tessera_complete");
    auto made_by = attrs.find("workflow_hash");
    return complete != attrs.end() && complete->second == AttrValue{std::int64_t{1}} && made_by != attrs.end() &&
           made_by->second == AttrValue{hash};
  } catch (const Error&) {
    return false;
  }
}

}  // namespace tessera
