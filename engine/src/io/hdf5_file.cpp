#include "tessera/io/hdf5_file.hpp"

#include "hdf5_util.hpp"

namespace tessera::h5 {

using detail::Handle;
using detail::NetcdfBuilder;

std::string to_string(StoredType type) {
  switch (type) {
    case StoredType::Float32: return "float32";
    case StoredType::Float64: return "float64";
    case StoredType::Int8: return "int8";
    case StoredType::Int16: return "int16";
    case StoredType::Int32: return "int32";
    case StoredType::Int64: return "int64";
    case StoredType::UInt8: return "uint8";
    case StoredType::UInt16: return "uint16";
    case StoredType::UInt32: return "uint32";
    case StoredType::UInt64: return "uint64";
    case StoredType::String: return "string";
    case StoredType::Other: break;
  }
  return "other";
}

namespace {

StoredType classify(hid_t type, hid_t where) {
  const std::size_t size = detail::get_type_size(type, where);
  switch (detail::get_type_class(type, where)) {
    case H5T_FLOAT:
      return size == 4 ? StoredType::Float32 : size == 8 ? StoredType::Float64 : StoredType::Other;
    case H5T_INTEGER: {
      const H5T_sign_t sign = H5Tget_sign(type);
      if (sign == H5T_SGN_ERROR) detail::fail(where, "cannot read the sign of an integer type");
      const bool is_signed = sign == H5T_SGN_2;
      switch (size) {
        case 1: return is_signed ? StoredType::Int8 : StoredType::UInt8;
        case 2: return is_signed ? StoredType::Int16 : StoredType::UInt16;
        case 4: return is_signed ? StoredType::Int32 : StoredType::UInt32;
        case 8: return is_signed ? StoredType::Int64 : StoredType::UInt64;
        default: return StoredType::Other;
      }
    }
    case H5T_STRING: return StoredType::String;
    default: return StoredType::Other;
  }
}

/// Name of the object `id` within its file, without the leading '/'.
std::string object_name(hid_t id) {
  const ssize_t n = H5Iget_name(id, nullptr, 0);
  if (n <= 0) return "";
  std::string name(static_cast<std::size_t>(n) + 1, '\0');
  H5Iget_name(id, name.data(), name.size());
  name.resize(static_cast<std::size_t>(n));
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

herr_t first_scale_name(hid_t, unsigned, hid_t scale, void* out) {
  *static_cast<std::string*>(out) = object_name(scale);
  return 1;  // the first attached scale names the dimension
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

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
  void write_array(const std::string& name, const std::vector<T>& values, const std::vector<std::string>& dims,
                   const std::vector<std::size_t>& shape, const VarInfo& info) {
    NetcdfBuilder& b = writable();
    if (dims.size() != shape.size() || dims.empty())
      throw InternalError(path + ": variable '" + name + "' has " + std::to_string(dims.size()) + " dimension names for " +
                          std::to_string(shape.size()) + " axes");
    std::size_t n = 1;
    for (std::size_t length : shape) n *= length;
    if (values.size() != n)
      throw InternalError(path + ": variable '" + name + "' has " + std::to_string(values.size()) + " values, not " +
                          std::to_string(n));
    if (dims.size() == 1 && dims[0] == name) {  // a dimension's own coordinate
      b.add_coordinate(name, values, info);
      return;
    }
    for (std::size_t i = 0; i < dims.size(); ++i) b.require_dim(dims[i], shape[i], {dims[i], "1", "index along " + dims[i]});
    const Handle dataset = b.add_variable(name, detail::native_type<T>(), dims, info);
    b.write_replicated(dataset, detail::native_type<T>(), values.data(), values.size(), name);
  }

  Variable describe(const std::string& name) const {
    if (!detail::link_exists(file, name)) throw IoError(path + ": no variable '" + name + "'");
    const Handle dataset = detail::open_dataset(file, name);
    const Handle space = detail::get_space(dataset);
    Variable v;
    v.name = name;
    for (hsize_t n : detail::get_dims(space, dataset)) v.shape.push_back(static_cast<std::size_t>(n));
    const Handle type(H5Dget_type(dataset), H5Tclose);
    if (type < 0) detail::fail(dataset, "cannot get the type of dataset '" + name + "'");
    v.type = classify(type, dataset);
    const htri_t scale = H5DSis_scale(dataset);
    if (scale < 0) detail::fail(dataset, "cannot tell whether '" + name + "' is a dimension scale");
    v.is_dimension = scale > 0;
    v.dims.assign(v.shape.size(), "");
    if (v.is_dimension && v.shape.size() == 1) {
      v.dims[0] = name;
      return v;
    }
    for (unsigned i = 0; i < v.shape.size(); ++i) {
      const int scales = H5DSget_num_scales(dataset, i);
      if (scales < 0) detail::fail(dataset, "cannot count the dimension scales of '" + name + "'");
      if (scales == 0) continue;
      detail::check(H5DSiterate_scales(dataset, i, nullptr, first_scale_name, &v.dims[i]), dataset,
                    "cannot read the dimension scales of '" + name + "'");
    }
    return v;
  }

  template <class T>
  void read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<T> out) const {
    if (!detail::link_exists(file, name)) throw IoError(path + ": no variable '" + name + "'");
    const Handle dataset = detail::open_dataset(file, name);
    const Handle space = detail::get_space(dataset);
    const std::vector<hsize_t> dims = detail::get_dims(space, dataset);
    if (dims.empty()) throw IoError(path + ": variable '" + name + "' is a scalar; it has no rows to read");
    if (first + count > dims[0])
      throw IoError(path + ": variable '" + name + "' has " + std::to_string(dims[0]) + " entries along its first axis; " +
                    "cannot read entries " + std::to_string(first) + " to " + std::to_string(first + count));
    std::size_t per_row = 1;
    for (std::size_t i = 1; i < dims.size(); ++i) per_row *= static_cast<std::size_t>(dims[i]);
    if (out.size() != count * per_row)
      throw InternalError(path + ": reading " + std::to_string(count) + " entries of '" + name + "' into " +
                          std::to_string(out.size()) + " values, not " + std::to_string(count * per_row));
    if (out.empty()) return;
    std::vector<hsize_t> start(dims.size(), 0), block = dims;
    start[0] = first;
    block[0] = count;
    detail::select_hyperslab(space, start, block, dataset);
    const Handle mem_space = detail::create_simple_space({out.size()}, dataset);
    detail::check(H5Dread(dataset, detail::native_type<T>(), mem_space, space, H5P_DEFAULT, out.data()), dataset,
                  "cannot read entries " + std::to_string(first) + " to " + std::to_string(first + count) +
                      " of dataset '" + name + "'");
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

void File::write_array(const std::string& name, const std::vector<float>& values, const std::vector<std::string>& dims,
                       const std::vector<std::size_t>& shape, const VarInfo& info) {
  impl_->write_array(name, values, dims, shape, info);
}
void File::write_array(const std::string& name, const std::vector<double>& values, const std::vector<std::string>& dims,
                       const std::vector<std::size_t>& shape, const VarInfo& info) {
  impl_->write_array(name, values, dims, shape, info);
}
void File::write_array(const std::string& name, const std::vector<std::int64_t>& values,
                       const std::vector<std::string>& dims, const std::vector<std::size_t>& shape, const VarInfo& info) {
  impl_->write_array(name, values, dims, shape, info);
}
void File::write_array(const std::string& name, const std::vector<std::uint32_t>& values,
                       const std::vector<std::string>& dims, const std::vector<std::size_t>& shape, const VarInfo& info) {
  impl_->write_array(name, values, dims, shape, info);
}
void File::write_array(const std::string& name, const std::vector<std::uint8_t>& values,
                       const std::vector<std::string>& dims, const std::vector<std::size_t>& shape, const VarInfo& info) {
  impl_->write_array(name, values, dims, shape, info);
}

const std::string& File::path() const { return impl_->path; }

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

std::vector<Variable> File::variables() const {
  H5G_info_t info{};
  detail::check(H5Gget_info(impl_->file, &info), impl_->file, "cannot read the root group");
  std::vector<Variable> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(impl_->file, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) detail::fail(impl_->file, "cannot read the name of link " + std::to_string(i) + " of the root group");
    std::string name(static_cast<std::size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(impl_->file, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(n));
    const hid_t object = H5Oopen(impl_->file, name.c_str(), H5P_DEFAULT);
    if (object < 0) continue;  // e.g. a dangling soft link: nothing to read
    const bool is_dataset = H5Iget_type(object) == H5I_DATASET;
    H5Oclose(object);
    if (is_dataset) out.push_back(impl_->describe(name));
  }
  return out;
}

Variable File::variable(const std::string& name) const { return impl_->describe(name); }

std::map<std::string, AttrValue> File::attributes(const std::string& dataset) const {
  Handle holder;
  if (!dataset.empty()) {
    if (!detail::link_exists(impl_->file, dataset)) throw IoError(impl_->path + ": no variable '" + dataset + "'");
    holder = detail::open_dataset(impl_->file, dataset);
  }
  const hid_t object = dataset.empty() ? impl_->file.get() : holder.get();
  std::vector<std::string> names;
  detail::check(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute_name, &names), object,
                "cannot list the attributes of " + (dataset.empty() ? std::string("the root group") : "'" + dataset + "'"));
  std::map<std::string, AttrValue> out;
  for (const std::string& name : names) {
    const Handle attribute = detail::open_attribute(object, name);
    const Handle space = detail::get_attribute_space(attribute);
    if (detail::get_npoints(space, attribute) != 1) continue;
    const Handle type = detail::get_attribute_type(attribute, name);
    const H5T_class_t type_class = detail::get_type_class(type, attribute);
    if (type_class != H5T_STRING && type_class != H5T_FLOAT && type_class != H5T_INTEGER) continue;
    out[name] = detail::get_attribute(object, name);
  }
  return out;
}

void File::read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<float> out) const {
  impl_->read_rows(name, first, count, out);
}
void File::read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<double> out) const {
  impl_->read_rows(name, first, count, out);
}
void File::read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<std::int64_t> out) const {
  impl_->read_rows(name, first, count, out);
}
void File::read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<std::uint32_t> out) const {
  impl_->read_rows(name, first, count, out);
}
void File::read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<std::uint8_t> out) const {
  impl_->read_rows(name, first, count, out);
}

}  // namespace tessera::h5
