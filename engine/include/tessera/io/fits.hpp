#pragma once
/// Thin CFITSIO wrappers: each call that fails throws IoError/InputError with the file
/// name and CFITSIO's own error text (fits_get_errstatus) appended.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera::fits {

/// An open FITS file (read-only or newly created); closes on destruction.
class File {
 public:
  static File open_read(const std::string& path);
  /// Creates (overwriting) a file with an empty primary HDU.
  static File create(const std::string& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();
  const std::string& path() const { return path_; }

  /// Moves to the primary HDU.
  void goto_primary();
  /// Moves to the image extension with EXTNAME == name (and EXTVER == version when given);
  /// returns false when there is none.
  bool goto_extension(const std::string& name, std::optional<int> version = std::nullopt);

  /// Header keywords of the current HDU.
  std::optional<double> read_double(const std::string& key);
  std::optional<std::string> read_string(const std::string& key);
  double require_double(const std::string& key);

  /// Current HDU's image: BITPIX and axes (NAXIS1 = x first, as FITS stores them).
  int bitpix();
  std::vector<long> axes();
  /// Reads the whole current 2D image converted to float / uint32 (row-major y, x).
  std::vector<float> read_image_float();
  std::vector<std::uint32_t> read_image_uint32();

  /// Writes a new image extension (becomes the current HDU).
  void append_image_float(const std::string& extname, const std::vector<float>& values, long ny, long nx);
  void append_image_int16(const std::string& extname, const std::vector<std::uint16_t>& values, long ny, long nx);
  /// Header keyword in the current HDU.
  void write_key(const std::string& key, double value, const std::string& comment);
  void write_key(const std::string& key, const std::string& value, const std::string& comment);

 private:
  File(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  void* handle_ = nullptr;  // fitsfile*
  std::string path_;
};

}  // namespace tessera::fits
