#pragma once
/// Private HDF5 helpers shared by h5::File (serial) and write_dataset_hdf5 (parallel):
/// an RAII handle for every hid_t, one thin wrapper per HDF5 C call that throws IoError
/// with the file, what was being done and HDF5's own error stack, and the netCDF-4
/// structure (dimension scales, coordinate variables, units/long_name) both writers share.
#include <hdf5.h>
#include <hdf5_hl.h>  // dimension scales (H5DS)
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/dataset.hpp"
#include "tessera/errors.hpp"

namespace tessera::h5::detail {

// ---------------------------------------------------------------------------------------
// Errors

/// Turns off HDF5's printing of error stacks: we append them to our exceptions instead.
inline void quiet_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

inline herr_t append_error_entry(unsigned n, const H5E_error2_t* entry, void* client) {
  auto& text = *static_cast<std::string*>(client);
  char minor[160] = "";
  H5Eget_msg(entry->min_num, nullptr, minor, sizeof minor);
  std::string desc = entry->desc ? entry->desc : "";
  std::replace(desc.begin(), desc.end(), '\n', ' ');  // some descriptions embed ctime() text
  text += "\n  HDF5 #" + std::to_string(n) + " " + (entry->func_name ? entry->func_name : "?") + "(): " + desc +
          (minor[0] ? std::string(" (") + minor + ")" : "");
  return 0;
}

/// The current thread's HDF5 error stack as text, outermost call first. Must run before
/// any other HDF5 call, which would clear the stack.
inline std::string error_stack_text() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, append_error_entry, &text);
  return text;
}

/// Throws IoError "<path>: <what>" followed by HDF5's error stack.
[[noreturn]] inline void fail_at(const std::string& path, const std::string& what) {
  const std::string stack = error_stack_text();
  throw IoError((path.empty() ? "" : path + ": ") + what + stack);
}

/// Name of the file that an object id belongs to, or "" (used only to word errors).
inline std::string file_name_of(hid_t object) {
  const ssize_t n = object < 0 ? -1 : H5Fget_name(object, nullptr, 0);
  if (n <= 0) return "";
  std::string name(static_cast<std::size_t>(n) + 1, '\0');
  H5Fget_name(object, name.data(), name.size());
  name.resize(static_cast<std::size_t>(n));
  return name;
}

/// Throws IoError naming the file of `where` (read from HDF5 after the stack was saved).
[[noreturn]] inline void fail(hid_t where, const std::string& what) {
  const std::string stack = error_stack_text();
  const std::string path = file_name_of(where);
  throw IoError((path.empty() ? "" : path + ": ") + what + stack);
}

inline void check(herr_t status, hid_t where, const std::string& what) {
  if (status < 0) fail(where, what);
}

// ---------------------------------------------------------------------------------------
// RAII

/// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) noexcept : id_(id), close_(closer) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), close_(other.close_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      close_ = other.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // so that handles pass straight to C calls

  /// Closes now, reporting failure: closing a file flushes it, and that can fail.
  void close(const std::string& path, const std::string& what) {
    const hid_t id = std::exchange(id_, H5I_INVALID_HID);
    if (id >= 0 && close_(id) < 0) fail_at(path, what);
  }
  /// Closes now, ignoring failure (destructors and error paths).
  void reset() noexcept {
    if (id_ >= 0) close_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Thin wrappers, one per C call. Object wrappers word errors with the file of their first
// argument; file and property-list wrappers take the path explicitly.

inline Handle create_file(const std::string& path, hid_t fcpl, hid_t fapl) {
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl);
  if (id < 0) fail_at(path, "cannot create the HDF5 file");
  return {id, H5Fclose};
}

inline Handle open_file(const std::string& path, hid_t fapl) {
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
  if (id < 0) fail_at(path, "cannot open the HDF5 file");
  return {id, H5Fclose};
}

inline Handle create_plist(hid_t plist_class, const std::string& path) {
  const hid_t id = H5Pcreate(plist_class);
  if (id < 0) fail_at(path, "cannot create a property list");
  return {id, H5Pclose};
}

/// Tracks link creation order so that netCDF readers list variables in writing order.
inline void set_link_creation_order(hid_t fcpl, const std::string& path) {
  if (H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0)
    fail_at(path, "cannot set link creation order tracking");
}

/// Uses the HDF5 1.8 file format, whose dense attribute storage takes attributes over 64 KiB
/// (long provenance texts); netCDF-C, h5py and h5netcdf all read it.
inline void set_format_1_8(hid_t fapl, const std::string& path) {
  if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) fail_at(path, "cannot select the 1.8 file format");
}

inline void set_fapl_mpio(hid_t fapl, MPI_Comm comm, const std::string& path) {
  if (H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) fail_at(path, "cannot select the MPI-IO file driver");
}

inline void set_dxpl_collective(hid_t dxpl, const std::string& path) {
  if (H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) fail_at(path, "cannot request collective transfers");
}

inline void set_fill_time_never(hid_t dcpl, const std::string& path) {
  if (H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0) fail_at(path, "cannot turn off fill values");
}

inline H5D_mpio_actual_io_mode_t get_mpio_actual_io_mode(hid_t dxpl, const std::string& path) {
  H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
  if (H5Pget_mpio_actual_io_mode(dxpl, &mode) < 0) fail_at(path, "cannot read the I/O mode of the last transfer");
  return mode;
}

inline Handle create_simple_space(const std::vector<hsize_t>& dims, hid_t where) {
  const hid_t id = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  if (id < 0) fail(where, "cannot create a dataspace");
  return {id, H5Sclose};
}

inline Handle create_scalar_space(hid_t where) {
  const hid_t id = H5Screate(H5S_SCALAR);
  if (id < 0) fail(where, "cannot create a scalar dataspace");
  return {id, H5Sclose};
}

inline void select_hyperslab(hid_t space, const std::vector<hsize_t>& start, const std::vector<hsize_t>& count,
                             hid_t where) {
  check(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), where,
        "cannot select a hyperslab");
}

/// Adds a block to the current selection (union).
inline void add_hyperslab(hid_t space, const std::vector<hsize_t>& start, const std::vector<hsize_t>& count,
                          hid_t where) {
  check(H5Sselect_hyperslab(space, H5S_SELECT_OR, start.data(), nullptr, count.data(), nullptr), where,
        "cannot add a block to a hyperslab selection");
}

inline void select_none(hid_t space, hid_t where) { check(H5Sselect_none(space), where, "cannot select nothing"); }

inline Handle get_space(hid_t dataset) {
  const hid_t id = H5Dget_space(dataset);
  if (id < 0) fail(dataset, "cannot get the dataspace of a dataset");
  return {id, H5Sclose};
}

inline Handle get_attribute_space(hid_t attribute) {
  const hid_t id = H5Aget_space(attribute);
  if (id < 0) fail(attribute, "cannot get the dataspace of an attribute");
  return {id, H5Sclose};
}

inline std::vector<hsize_t> get_dims(hid_t space, hid_t where) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail(where, "cannot read the rank of a dataspace");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) fail(where, "cannot read dimensions");
  return dims;
}

inline hssize_t get_npoints(hid_t space, hid_t where) {
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) fail(where, "cannot count the elements of a dataspace");
  return n;
}

inline Handle create_dataset(hid_t loc, const std::string& name, hid_t type, hid_t space, hid_t dcpl) {
  const hid_t id = H5Dcreate2(loc, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (id < 0) fail(loc, "cannot create dataset '" + name + "'");
  return {id, H5Dclose};
}

inline Handle open_dataset(hid_t loc, const std::string& name) {
  const hid_t id = H5Dopen2(loc, name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(loc, "cannot open dataset '" + name + "'");
  return {id, H5Dclose};
}

inline void write_dataset(hid_t dataset, hid_t mem_type, hid_t mem_space, hid_t file_space, hid_t dxpl,
                          const void* values, const std::string& name) {
  check(H5Dwrite(dataset, mem_type, mem_space, file_space, dxpl, values), dataset, "cannot write dataset '" + name + "'");
}

inline void read_dataset(hid_t dataset, hid_t mem_type, void* values, const std::string& name) {
  check(H5Dread(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), dataset, "cannot read dataset '" + name + "'");
}

inline bool link_exists(hid_t loc, const std::string& name) {
  const htri_t exists = H5Lexists(loc, name.c_str(), H5P_DEFAULT);
  if (exists < 0) fail(loc, "cannot look up '" + name + "'");
  return exists > 0;
}

inline bool attribute_exists(hid_t object, const std::string& name) {
  const htri_t exists = H5Aexists(object, name.c_str());
  if (exists < 0) fail(object, "cannot look up attribute '" + name + "'");
  return exists > 0;
}

inline void delete_attribute(hid_t object, const std::string& name) {
  check(H5Adelete(object, name.c_str()), object, "cannot delete attribute '" + name + "'");
}

inline Handle create_attribute(hid_t object, const std::string& name, hid_t type, hid_t space) {
  const hid_t id = H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) fail(object, "cannot create attribute '" + name + "'");
  return {id, H5Aclose};
}

inline Handle open_attribute(hid_t object, const std::string& name) {
  const hid_t id = H5Aopen(object, name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(object, "cannot open attribute '" + name + "'");
  return {id, H5Aclose};
}

inline void write_attribute(hid_t attribute, hid_t mem_type, const void* value, const std::string& name) {
  check(H5Awrite(attribute, mem_type, value), attribute, "cannot write attribute '" + name + "'");
}

inline void read_attribute(hid_t attribute, hid_t mem_type, void* value, const std::string& name) {
  check(H5Aread(attribute, mem_type, value), attribute, "cannot read attribute '" + name + "'");
}

inline Handle get_attribute_type(hid_t attribute, const std::string& name) {
  const hid_t id = H5Aget_type(attribute);
  if (id < 0) fail(attribute, "cannot get the type of attribute '" + name + "'");
  return {id, H5Tclose};
}

inline H5T_class_t get_type_class(hid_t type, hid_t where) {
  const H5T_class_t type_class = H5Tget_class(type);
  if (type_class == H5T_NO_CLASS) fail(where, "cannot get the class of a datatype");
  return type_class;
}

inline std::size_t get_type_size(hid_t type, hid_t where) {
  const std::size_t size = H5Tget_size(type);
  if (size == 0) fail(where, "cannot get the size of a datatype");
  return size;
}

inline bool is_variable_string(hid_t type, hid_t where) {
  const htri_t variable = H5Tis_variable_str(type);
  if (variable < 0) fail(where, "cannot tell whether a string is variable-length");
  return variable > 0;
}

/// Fixed-length, null-terminated ASCII string type of `size` bytes (netCDF's text attributes).
inline Handle fixed_string_type(std::size_t size, hid_t where) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (type < 0) fail(where, "cannot copy the string datatype");
  check(H5Tset_size(type, size), where, "cannot set a string size");
  check(H5Tset_strpad(type, H5T_STR_NULLTERM), where, "cannot set string padding");
  return type;
}

inline Handle variable_string_type(hid_t where) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (type < 0) fail(where, "cannot copy the string datatype");
  check(H5Tset_size(type, H5T_VARIABLE), where, "cannot make a variable-length string type");
  return type;
}

inline void free_memory(void* memory, hid_t where) { check(H5free_memory(memory), where, "cannot free HDF5 memory"); }

inline void set_scale(hid_t dataset, const std::string& dim) {
  check(H5DSset_scale(dataset, dim.c_str()), dataset, "cannot make '" + dim + "' a dimension scale");
}

inline void attach_scale(hid_t dataset, hid_t scale, unsigned index, const std::string& name, const std::string& dim) {
  check(H5DSattach_scale(dataset, scale, index), dataset,
        "cannot attach dimension '" + dim + "' to '" + name + "' as dimension " + std::to_string(index));
}

// ---------------------------------------------------------------------------------------
// Types and attributes

template <class T>
hid_t native_type() {
  if constexpr (std::is_same_v<T, double>) {
    return H5T_NATIVE_DOUBLE;
  } else if constexpr (std::is_same_v<T, float>) {
    return H5T_NATIVE_FLOAT;
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return H5T_NATIVE_INT64;
  } else if constexpr (std::is_same_v<T, std::uint8_t>) {
    return H5T_NATIVE_UINT8;
  } else {
    static_assert(std::is_same_v<T, std::uint32_t>, "no HDF5 type for this element type");
    return H5T_NATIVE_UINT32;
  }
}

/// Writes (replacing) a scalar attribute: strings as fixed-length ASCII, which xarray,
/// h5netcdf and netCDF4 all read as str; numbers as float64 or int64.
inline void set_attribute(hid_t object, const std::string& name, const AttrValue& value) {
  if (attribute_exists(object, name)) delete_attribute(object, name);
  const Handle space = create_scalar_space(object);
  if (const auto* text = std::get_if<std::string>(&value)) {
    // HDF5 has no zero-size strings: an empty one is one NUL byte, which readers strip.
    const Handle type = fixed_string_type(std::max<std::size_t>(text->size(), 1), object);
    const std::string padded = text->empty() ? std::string(1, '\0') : *text;
    write_attribute(create_attribute(object, name, type, space), type, padded.data(), name);
  } else if (const auto* real = std::get_if<double>(&value)) {
    write_attribute(create_attribute(object, name, H5T_NATIVE_DOUBLE, space), H5T_NATIVE_DOUBLE, real, name);
  } else {
    const auto* integer = std::get_if<std::int64_t>(&value);
    write_attribute(create_attribute(object, name, H5T_NATIVE_INT64, space), H5T_NATIVE_INT64, integer, name);
  }
}

/// Reads the first element of an attribute: strings (fixed or variable length), or numbers
/// as float64 (floating point) or int64 (integers).
inline AttrValue get_attribute(hid_t object, const std::string& name) {
  const Handle attribute = open_attribute(object, name);
  const Handle type = get_attribute_type(attribute, name);
  const Handle space = get_attribute_space(attribute);
  const auto count = static_cast<std::size_t>(std::max<hssize_t>(get_npoints(space, attribute), 1));
  switch (get_type_class(type, attribute)) {
    case H5T_STRING: {
      if (is_variable_string(type, attribute)) {
        const Handle mem_type = variable_string_type(attribute);
        std::vector<char*> values(count, nullptr);
        read_attribute(attribute, mem_type, values.data(), name);
        std::string text = values[0] ? values[0] : "";
        for (char* v : values) free_memory(v, attribute);
        return text;
      }
      const std::size_t size = get_type_size(type, attribute);
      std::vector<char> bytes(size * count + 1, '\0');
      read_attribute(attribute, type, bytes.data(), name);
      return std::string(bytes.data(), strnlen(bytes.data(), size));  // NULLTERM or NULLPAD alike
    }
    case H5T_FLOAT: {
      std::vector<double> values(count);
      read_attribute(attribute, H5T_NATIVE_DOUBLE, values.data(), name);
      return values[0];
    }
    case H5T_INTEGER: {
      std::vector<std::int64_t> values(count);
      read_attribute(attribute, H5T_NATIVE_INT64, values.data(), name);
      return values[0];
    }
    default:
      throw IoError(file_name_of(object) + ": attribute '" + name + "' is neither a string nor a number");
  }
}

// ---------------------------------------------------------------------------------------
// netCDF-4 structure

/// Builds a netCDF-4 compatible file: each dimension is a 1D dataset that is an HDF5
/// dimension scale, and every variable is attached to the scales of its dimensions.
///
/// Serial use: `dxpl` = H5P_DEFAULT, `supplies_data` = true. Parallel use: every rank makes
/// the same calls in the same order (HDF5 metadata calls are collective); replicated values
/// come from the rank with `supplies_data` while the others select nothing, so that every
/// write stays one collective call.
class NetcdfBuilder {
 public:
  NetcdfBuilder(hid_t file, std::string path, hid_t dxpl, bool supplies_data)
      : file_(file), path_(std::move(path)), dxpl_(dxpl), supplies_data_(supplies_data) {
    dcpl_ = create_plist(H5P_DATASET_CREATE, path_);
    // Every element is written exactly once, so filling first would only double the I/O.
    set_fill_time_never(dcpl_, path_);
  }

  bool has_dim(const std::string& dim) const { return dims_.count(dim) > 0; }

  /// Makes the 1D variable `name` (values over dimension `name`) the coordinate of a new
  /// dimension of the same name.
  template <class T>
  void add_coordinate(const std::string& name, const std::vector<T>& values, const VarInfo& info) {
    if (has_dim(name))
      throw IoError(path_ + ": variable '" + name + "' must be written before any other variable on dimension '" +
                    name + "'");
    Handle dataset = create_variable(name, native_type<T>(), {values.size()}, info);
    write_replicated(dataset, native_type<T>(), values.data(), values.size(), name);
    set_scale(dataset, name);
    dims_[name] = {std::move(dataset), values.size()};
  }

  /// Makes sure dimension `dim` exists with length n; a new one gets the index coordinate
  /// 0..n-1 (int64) described by `info` (name ignored).
  void require_dim(const std::string& dim, std::size_t n, VarInfo info) {
    if (auto it = dims_.find(dim); it != dims_.end()) {
      if (it->second.length != n)
        throw IoError(path_ + ": dimension '" + dim + "' has length " + std::to_string(it->second.length) +
                      ", but a variable over it needs " + std::to_string(n));
      return;
    }
    std::vector<std::int64_t> index(n);
    std::iota(index.begin(), index.end(), std::int64_t{0});
    info.name = dim;
    add_coordinate(dim, index, info);
  }

  /// Creates variable `name` over existing dimensions, with units and long_name, attached to
  /// the dimensions' scales. Nothing is written to it yet.
  Handle add_variable(const std::string& name, hid_t type, const std::vector<std::string>& dims, const VarInfo& info) {
    std::vector<hsize_t> lengths;
    for (const auto& dim : dims) {
      auto it = dims_.find(dim);
      if (it == dims_.end()) throw InternalError(path_ + ": variable '" + name + "' uses undeclared dimension '" + dim + "'");
      lengths.push_back(it->second.length);
    }
    Handle dataset = create_variable(name, type, lengths, info);
    for (unsigned i = 0; i < dims.size(); ++i) attach_scale(dataset, dims_.at(dims[i]).scale, i, name, dims[i]);
    return dataset;
  }

  /// Writes all of a (replicated) dataset of n elements; see the class comment.
  void write_replicated(hid_t dataset, hid_t mem_type, const void* values, std::size_t n, const std::string& name) {
    // A zero-size dataset has nothing to write, and that is the same on every rank.
    if (n == 0) return;
    const Handle file_space = get_space(dataset);
    const Handle mem_space = create_simple_space({n}, dataset);
    if (!supplies_data_) {
      select_none(file_space, dataset);
      select_none(mem_space, dataset);
    }
    write(dataset, mem_type, mem_space, file_space, values, name);
  }

  /// One H5Dwrite with this builder's transfer properties; records the I/O mode HDF5
  /// actually used when the transfer is parallel.
  void write(hid_t dataset, hid_t mem_type, hid_t mem_space, hid_t file_space, const void* values,
             const std::string& name) {
    write_dataset(dataset, mem_type, mem_space, file_space, dxpl_, values, name);
    if (dxpl_ != H5P_DEFAULT) io_modes_.push_back(get_mpio_actual_io_mode(dxpl_, path_));
  }

  /// I/O modes of the parallel writes so far, in order.
  const std::vector<H5D_mpio_actual_io_mode_t>& io_modes() const { return io_modes_; }

  /// Closes the dimension scales (before the file is closed).
  void close() {
    dims_.clear();
    dcpl_.reset();
  }

 private:
  struct Dim {
    Handle scale;
    std::size_t length = 0;
  };

  Handle create_variable(const std::string& name, hid_t type, const std::vector<hsize_t>& lengths, const VarInfo& info) {
    const Handle space = create_simple_space(lengths, file_);
    Handle dataset = create_dataset(file_, name, type, space, dcpl_);
    set_attribute(dataset, "units", info.units);
    set_attribute(dataset, "long_name", info.long_name);
    return dataset;
  }

  hid_t file_;
  std::string path_;
  hid_t dxpl_;
  bool supplies_data_;
  Handle dcpl_;
  std::map<std::string, Dim> dims_;
  std::vector<H5D_mpio_actual_io_mode_t> io_modes_;
};

}  // namespace tessera::h5::detail
