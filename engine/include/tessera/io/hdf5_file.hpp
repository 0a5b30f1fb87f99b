#pragma once
/// A small serial HDF5 file API (one process), netCDF-4 compatible: every vector or image
/// is attached to dimension scales so that xarray opens the file directly. Used for
/// simulator truth files and for reading outputs back in tests.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tessera/dataset.hpp"

namespace tessera::h5 {

class File {
 public:
  /// Creates (truncating) a file for writing; throws IoError with the HDF5 error text.
  static File create(const std::string& path);
  /// Opens an existing file read-only; throws IoError naming the path.
  static File open(const std::string& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  /// 1D variable along dimension `dim`. The dimension is created on first use with that
  /// length (as an index coordinate unless a variable named `dim` is written first);
  /// a later variable on the same dimension must have the same length.
  void write_vector(const std::string& name, const std::vector<double>& values, const std::string& dim,
                    const VarInfo& info);
  void write_vector(const std::string& name, const std::vector<std::int64_t>& values, const std::string& dim,
                    const VarInfo& info);
  /// 2D float32 variable over (dim_y, dim_x).
  void write_image(const std::string& name, const std::vector<float>& values, std::size_t ny, std::size_t nx,
                   const std::string& dim_y, const std::string& dim_x, const VarInfo& info);
  /// Root attribute.
  void set_attribute(const std::string& name, const AttrValue& value);

  bool has(const std::string& name) const;
  /// Shape of a dataset.
  std::vector<std::size_t> shape(const std::string& name) const;
  /// Reads a whole dataset converted to the asked type (float64, float32, int64, uint32).
  std::vector<double> read_doubles(const std::string& name) const;
  std::vector<float> read_floats(const std::string& name) const;
  std::vector<std::int64_t> read_ints(const std::string& name) const;
  std::vector<std::uint32_t> read_uints(const std::string& name) const;
  /// Root attribute (strings, float64 or int64).
  AttrValue read_attribute(const std::string& name) const;
  /// String attribute of a dataset (e.g. "units").
  std::string read_string_attribute(const std::string& dataset, const std::string& name) const;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::h5
