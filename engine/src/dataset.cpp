#include "tessera/dataset.hpp"

namespace tessera {

std::string to_string(ElementType type) {
  switch (type) {
    case ElementType::Float32: return "float32";
    case ElementType::UInt32: return "uint32";
    case ElementType::UInt8: return "uint8";
  }
  return "unknown";
}

void Dataset::add_cube(VarInfo info, ElementType type, double fill, bool grouped) {
  const std::size_t n = partition_.local_elements(rank_) * (grouped ? shape_.ng : 1);
  CubeVariable cube{std::move(info), {}, grouped};
  if (type == ElementType::Float32)
    cube.values = std::vector<float>(n, static_cast<float>(fill));
  else if (type == ElementType::UInt32)
    cube.values = std::vector<std::uint32_t>(n, static_cast<std::uint32_t>(fill));
  else
    cube.values = std::vector<std::uint8_t>(n, static_cast<std::uint8_t>(fill));
  std::string name = cube.info.name;
  cubes_[name] = std::move(cube);
}

CubeVariable& Dataset::cube(const std::string& name) {
  auto it = cubes_.find(name);
  if (it == cubes_.end()) throw InternalError("no cube named '" + name + "' in the dataset");
  return it->second;
}

const CubeVariable& Dataset::cube(const std::string& name) const {
  auto it = cubes_.find(name);
  if (it == cubes_.end()) throw InternalError("no cube named '" + name + "' in the dataset");
  return it->second;
}

FrameVector& Dataset::frame_vector(const std::string& name) {
  auto it = frame_vectors_.find(name);
  if (it == frame_vectors_.end()) throw InternalError("no per-frame vector named '" + name + "' in the dataset");
  return it->second;
}

FrameVector& Dataset::add_frame_vector(VarInfo info, bool integer) {
  std::string name = info.name;
  FrameVector& v = frame_vectors_[name];
  v.info = std::move(info);
  v.values.assign(shape_.nt, 0.0);
  v.integer = integer;
  return v;
}

Image& Dataset::image(const std::string& name) {
  auto it = images_.find(name);
  if (it == images_.end()) throw InternalError("no image named '" + name + "' in the dataset");
  return it->second;
}

}  // namespace tessera
