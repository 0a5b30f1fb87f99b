#pragma once
/// A small serial HDF5 file API (one process), netCDF-4 compatible: every vector or image
/// is attached to dimension scales so that xarray opens the file directly. Used for
/// simulator truth files and for reading outputs back in tests.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tessera/dataset.hpp"

namespace tessera::h5 {

/// Element type of a stored variable.
enum class StoredType { Float32, Float64, Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64, String, Other };
std::string to_string(StoredType type);

/// What a dataset of the file is: shape, element type and the dimension of each axis.
struct Variable {
  std::string name;
  std::vector<std::size_t> shape;
  /// Name of the dimension scale attached to each axis ("" where none is); a dimension
  /// scale's own axis is the dimension itself.
  std::vector<std::string> dims;
  StoredType type = StoredType::Other;
  bool is_dimension = false;  ///< the dataset is a dimension scale (a dimension's coordinate)
};

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
  /// N-D variable over named dimensions (`shape` gives their lengths; a dimension is created
  /// on first use as an index coordinate, and must then keep its length). A 1D variable named
  /// like its one dimension becomes that dimension's coordinate.
  void write_array(const std::string& name, const std::vector<float>& values, const std::vector<std::string>& dims,
                   const std::vector<std::size_t>& shape, const VarInfo& info);
  void write_array(const std::string& name, const std::vector<double>& values, const std::vector<std::string>& dims,
                   const std::vector<std::size_t>& shape, const VarInfo& info);
  void write_array(const std::string& name, const std::vector<std::int64_t>& values,
                   const std::vector<std::string>& dims, const std::vector<std::size_t>& shape, const VarInfo& info);
  void write_array(const std::string& name, const std::vector<std::uint32_t>& values,
                   const std::vector<std::string>& dims, const std::vector<std::size_t>& shape, const VarInfo& info);
  void write_array(const std::string& name, const std::vector<std::uint8_t>& values,
                   const std::vector<std::string>& dims, const std::vector<std::size_t>& shape, const VarInfo& info);
  /// Root attribute.
  void set_attribute(const std::string& name, const AttrValue& value);

  const std::string& path() const;

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

  /// Every dataset in the root group, by name.
  std::vector<Variable> variables() const;
  /// One dataset; throws IoError naming the file and the variable when there is none.
  Variable variable(const std::string& name) const;
  /// The scalar string and number attributes of the root group (dataset = "") or of a dataset
  /// (numbers as float64 or int64); attributes of other kinds (arrays, references) are left out.
  std::map<std::string, AttrValue> attributes(const std::string& dataset = "") const;

  /// Reads `count` entries of a dataset along its first axis from entry `first` (an entry is
  /// everything at one index of the first axis, e.g. a frame of a (time, y, x) cube), converted
  /// to the type of `out`, which must hold exactly that many values. Throws IoError naming the
  /// file and variable when the range runs past the dataset or the read fails.
  void read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<float> out) const;
  void read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<double> out) const;
  void read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<std::int64_t> out) const;
  void read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<std::uint32_t> out) const;
  void read_rows(const std::string& name, std::size_t first, std::size_t count, std::span<std::uint8_t> out) const;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::h5
