#pragma once
/// Thin CFITSIO wrappers: each call that fails throws IoError/InputError with the file
/// name and CFITSIO's own error text (fits_get_errstatus) appended.
///
/// Reading a file opened with open_read() throws InputError (the input is bad or
/// unreadable); creating or writing throws IoError. Example:
/// ```cpp
/// auto f = tessera::fits::File::open_read("visit/specimages/or00fm000_flt.fits");
/// double start = f.require_double("EXPSTART");
/// if (!f.goto_extension("SCI")) throw tessera::InputError(f.path() + ": no SCI extension");
/// std::vector<float> sci = f.read_image_float();
/// ```
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tessera::fits {

/// An open FITS file (read-only or newly created); closes on destruction.
class File {
 public:
  /// Opens an existing file read-only; throws InputError when it is missing or not FITS.
  /// The name is taken literally (no CFITSIO extended-filename syntax).
  static File open_read(const std::string& path);
  /// Creates (overwriting) a file with an empty primary HDU.
  static File create(const std::string& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();
  const std::string& path() const { return path_; }

  /// Flushes and closes; throws IoError on failure (the destructor closes quietly).
  void close();

  /// Moves to the primary HDU.
  void goto_primary();
  /// Moves to the image extension with EXTNAME == name (and EXTVER == version when given);
  /// returns false when there is none.
  bool goto_extension(const std::string& name, std::optional<int> version = std::nullopt);

  /// Header keywords of the current HDU.
  std::optional<double> read_double(const std::string& key);
  std::optional<std::string> read_string(const std::string& key);
  /// Throws InputError ("path: SCI: no EXPTIME keyword") when the keyword is missing.
  double require_double(const std::string& key);

  /// Current HDU's image: BITPIX and axes (NAXIS1 = x first, as FITS stores them).
  int bitpix();
  std::vector<long> axes();
  /// Reads the whole current 2D image converted to float / uint32 (row-major y, x).
  std::vector<float> read_image_float();
  std::vector<std::uint32_t> read_image_uint32();
  /// The same into a caller's buffer of exactly ny*nx values (e.g. a frame of a slab).
  /// Negative integers keep their bit pattern at the image's width (int16 -32768 -> 32768).
  void read_image_float(std::span<float> out);
  void read_image_uint32(std::span<std::uint32_t> out);

  /// Reads `out.size()` values of the current image of any dimension, starting at element
  /// `first` (0-based, in FITS storage order: NAXIS1 fastest), converted to float with
  /// BZERO/BSCALE applied. Throws InputError when the range runs past the image (e.g. a
  /// truncated file).
  void read_pixels_float(std::span<float> out, std::size_t first = 0);
  /// The same converted to uint32 (e.g. a 3D DQ extension of bit flags, exact for all 32 bits;
  /// negative values of a signed image keep their bit pattern at the image's width).
  void read_pixels_uint32(std::span<std::uint32_t> out, std::size_t first = 0);

  /// Moves to the binary table with EXTNAME == name; returns false when there is none.
  bool goto_table(const std::string& name);
  /// Rows of the current table.
  std::size_t table_rows();
  /// A numeric column of the current table, converted to double; throws InputError naming
  /// the column when it is missing.
  std::vector<double> read_column_double(const std::string& column);

  /// Writes a new image extension (becomes the current HDU).
  void append_image_float(const std::string& extname, const std::vector<float>& values, long ny, long nx);
  /// BITPIX 16 as calwf3 writes DQ; values above 32767 throw IoError.
  void append_image_int16(const std::string& extname, const std::vector<std::uint16_t>& values, long ny, long nx);
  /// Writes a new image extension of any dimension; `axes` are NAXIS1 (x, fastest) first.
  /// Unsigned 16-bit is stored the FITS way, as BITPIX 16 with BZERO 32768 (as JWST uncal SCI).
  void append_image_float(const std::string& extname, const std::vector<float>& values, const std::vector<long>& axes);
  void append_image_uint16(const std::string& extname, const std::vector<std::uint16_t>& values,
                           const std::vector<long>& axes);
  void append_image_uint32(const std::string& extname, const std::vector<std::uint32_t>& values,
                           const std::vector<long>& axes);
  /// Writes a new binary table extension of float64 columns (name, values), all the same length.
  void append_table(const std::string& extname, const std::vector<std::pair<std::string, std::vector<double>>>& columns);
  /// Header keyword in the current HDU (added, or updated when present).
  void write_key(const std::string& key, double value, const std::string& comment);
  void write_key(const std::string& key, int value, const std::string& comment);
  void write_key(const std::string& key, const std::string& value, const std::string& comment);

 private:
  File(void* handle, std::string path, bool writing) : handle_(handle), path_(std::move(path)), writing_(writing) {}
  /// Throws (InputError when reading, IoError when writing) if status is non-zero.
  void check(int status, const std::string& what) const;
  /// "path: SCI: " — where a problem is, for messages.
  std::string where() const;
  /// Pixels of the current image after checking it is 2D and holds exactly `expected`.
  long long image_pixels(std::size_t expected);

  void* handle_ = nullptr;  // fitsfile*
  std::string path_;
  bool writing_ = false;
  std::string hdu_ = "primary HDU";  // for messages
};

}  // namespace tessera::fits
