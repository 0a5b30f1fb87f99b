#include "tessera/io/hdf5_file.hpp"

#include "hdf5_util.hpp"

namespace tessera::h5 {

using detail::Handle;
using detail::NetcdfBuilder;

struct File::Impl {
  std::string path;
  Handle file;
  std::unique_ptr<NetcdfBuilder> builder;  // null when opened read-only; declared after `file` so it closes first

  NetcdfBuilder& writable() const {
    if (!builder) throw IoError(path + ": opened read-only, cannot write to it");
    return *builder;
  }

  template <class T>
  void write_vector(const std::string& name, const std::vector<T>& values, const std::string& dim, const VarInfo& info) {
    NetcdfBuilder& b = writable();
    if (name == dim) {  // a variable named like its dimension is that dimension's coordinate
      b.add_coordinate(name, values, info);
      return;
    }
    b.require_dim(dim, values.size(), {dim, "1", "index along " + dim});
    const Handle dataset = b.add_variable(name, detail::native_type<T>(), {dim}, info);
    b.write_replicated(dataset, detail::native_type<T>(), values.data(), values.size(), name);
  }

  template <class T>
  std::vector<T> read(const std::string& name) const {
    const Handle dataset = detail::open_dataset(file, name);
    const Handle space = detail::get_space(dataset);
    std::vector<T> values(static_cast<std::size_t>(detail::get_npoints(space, dataset)));
    // HDF5 converts from the stored type (e.g. uint32 to float64) while reading.
    if (!values.empty()) detail::read_dataset(dataset, detail::native_type<T>(), values.data(), name);
    return values;
  }
};

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::create(const std::string& path) {
  detail::quiet_errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const Handle fcpl = detail::create_plist(H5P_FILE_CREATE, path);
  detail::set_link_creation_order(fcpl, path);
  const Handle fapl = detail::create_plist(H5P_FILE_ACCESS, path);
  detail::set_format_1_8(fapl, path);
  impl->file = detail::create_file(path, fcpl, fapl);
  impl->builder = std::make_unique<NetcdfBuilder>(impl->file, path, H5P_DEFAULT, true);
  return File(std::move(impl));
}

File File::open(const std::string& path) {
  detail::quiet_errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->file = detail::open_file(path, H5P_DEFAULT);
  return File(std::move(impl));
}

void File::write_vector(const std::string& name, const std::vector<double>& values, const std::string& dim,
                        const VarInfo& info) {
  impl_->write_vector(name, values, dim, info);
}

void File::write_vector(const std::string& name, const std::vector<std::int64_t>& values, const std::string& dim,
                        const VarInfo& info) {
  impl_->write_vector(name, values, dim, info);
}

void File::write_image(const std::string& name, const std::vector<float>& values, std::size_t ny, std::size_t nx,
                       const std::string& dim_y, const std::string& dim_x, const VarInfo& info) {
  NetcdfBuilder& b = impl_->writable();
  if (values.size() != ny * nx)
    throw InternalError(impl_->path + ": image '" + name + "' has " + std::to_string(values.size()) +
                        " values, not " + std::to_string(ny) + " x " + std::to_string(nx));
  b.require_dim(dim_y, ny, {dim_y, "1", "index along " + dim_y});
  b.require_dim(dim_x, nx, {dim_x, "1", "index along " + dim_x});
  const Handle dataset = b.add_variable(name, H5T_NATIVE_FLOAT, {dim_y, dim_x}, info);
  b.write_replicated(dataset, H5T_NATIVE_FLOAT, values.data(), values.size(), name);
}

void File::set_attribute(const std::string& name, const AttrValue& value) {
  impl_->writable();
  detail::set_attribute(impl_->file, name, value);
}

bool File::has(const std::string& name) const { return detail::link_exists(impl_->file, name); }

std::vector<std::size_t> File::shape(const std::string& name) const {
  const Handle dataset = detail::open_dataset(impl_->file, name);
  const Handle space = detail::get_space(dataset);
  std::vector<std::size_t> out;
  for (hsize_t n : detail::get_dims(space, dataset)) out.push_back(static_cast<std::size_t>(n));
  return out;
}

std::vector<double> File::read_doubles(const std::string& name) const { return impl_->read<double>(name); }
std::vector<float> File::read_floats(const std::string& name) const { return impl_->read<float>(name); }
std::vector<std::int64_t> File::read_ints(const std::string& name) const { return impl_->read<std::int64_t>(name); }
std::vector<std::uint32_t> File::read_uints(const std::string& name) const { return impl_->read<std::uint32_t>(name); }

AttrValue File::read_attribute(const std::string& name) const { return detail::get_attribute(impl_->file, name); }

std::string File::read_string_attribute(const std::string& dataset, const std::string& name) const {
  const Handle object = detail::open_dataset(impl_->file, dataset);
  AttrValue value = detail::get_attribute(object, name);
  if (auto* text = std::get_if<std::string>(&value)) return std::move(*text);
  throw IoError(impl_->path + ": attribute '" + name + "' of '" + dataset + "' is a number, not a string");
}

}  // namespace tessera::h5
