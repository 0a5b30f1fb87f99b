#include "tessera/io/fits.hpp"

#include <fitsio.h>

#include <filesystem>
#include <utility>

#include "tessera/errors.hpp"

namespace tessera::fits {
namespace {

fitsfile* fptr(void* handle) { return static_cast<fitsfile*>(handle); }

/// CFITSIO's text for `status` followed by its error message stack, which this empties so
/// that the next failure does not repeat old messages.
std::string cfitsio_text(int status) {
  char text[FLEN_STATUS] = {};
  fits_get_errstatus(status, text);
  std::string stack;
  char message[FLEN_ERRMSG] = {};
  while (fits_read_errmsg(message)) {
    std::string line(message);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\n')) line.pop_back();
    if (line.empty()) continue;
    // CFITSIO splits one message over lines ending in ':' ("... of file:" + the name).
    if (!stack.empty()) stack += stack.back() == ':' ? " " : "; ";
    stack += line;
  }
  std::string out = text;
  if (!stack.empty()) out += " (" + stack + ")";
  return out;
}

}  // namespace

File File::open_read(const std::string& path) {
  fitsfile* f = nullptr;
  int status = 0;
  // The disk-file variant takes the name literally: '[' or '!' in a path mean nothing.
  if (fits_open_diskfile(&f, path.c_str(), READONLY, &status)) {
    const std::string text = cfitsio_text(status);
    if (f) {
      int ignored = 0;
      fits_close_file(f, &ignored);
      fits_clear_errmsg();
    }
    throw InputError(path + ": cannot open as FITS: " + text);
  }
  return File(f, path, false);
}

File File::create(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);  // CFITSIO refuses to create over an existing file
  fitsfile* f = nullptr;
  int status = 0;
  if (fits_create_diskfile(&f, path.c_str(), &status)) throw IoError(path + ": cannot create: " + cfitsio_text(status));
  File file(f, path, true);
  // An empty primary HDU (BITPIX 8, NAXIS 0), as in HST flt files.
  fits_create_img(f, BYTE_IMG, 0, nullptr, &status);
  file.check(status, "writing the primary HDU");
  return file;
}

File::File(File&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      path_(std::move(other.path_)),
      writing_(other.writing_),
      hdu_(std::move(other.hdu_)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    std::swap(handle_, other.handle_);
    std::swap(path_, other.path_);
    std::swap(writing_, other.writing_);
    std::swap(hdu_, other.hdu_);
  }
  return *this;
}

File::~File() {
  if (!handle_) return;
  int status = 0;
  fits_close_file(fptr(handle_), &status);
  if (status) fits_clear_errmsg();  // nobody can hear a destructor; leave no stale messages
}

void File::close() {
  if (!handle_) return;
  int status = 0;
  fits_close_file(fptr(handle_), &status);
  handle_ = nullptr;
  if (status) throw IoError(path_ + ": closing: " + cfitsio_text(status));
}

void File::check(int status, const std::string& what) const {
  if (status == 0) return;
  const std::string message = where() + what + ": " + cfitsio_text(status);
  if (writing_) throw IoError(message);
  throw InputError(message);
}

std::string File::where() const { return path_ + ": " + hdu_ + ": "; }

void File::goto_primary() {
  int status = 0;
  fits_movabs_hdu(fptr(handle_), 1, nullptr, &status);
  hdu_ = "primary HDU";
  check(status, "moving to the primary HDU");
}

bool File::goto_extension(const std::string& name, std::optional<int> version) {
  int status = 0;
  // CFITSIO wants a mutable name; 0 as version matches any EXTVER.
  std::string mutable_name = name;
  fits_movnam_hdu(fptr(handle_), IMAGE_HDU, mutable_name.data(), version.value_or(0), &status);
  if (status == BAD_HDU_NUM) {
    fits_clear_errmsg();
    return false;
  }
  hdu_ = name;
  if (version) hdu_.append(",").append(std::to_string(*version));
  check(status, "looking for the extension");
  return true;
}

std::optional<double> File::read_double(const std::string& key) {
  int status = 0;
  double value = 0;
  fits_read_key(fptr(handle_), TDOUBLE, key.c_str(), &value, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  check(status, "keyword " + key);
  return value;
}

std::optional<std::string> File::read_string(const std::string& key) {
  int status = 0;
  char value[FLEN_VALUE] = {};
  fits_read_key(fptr(handle_), TSTRING, key.c_str(), value, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  check(status, "keyword " + key);
  return std::string(value);
}

double File::require_double(const std::string& key) {
  std::optional<double> value = read_double(key);
  if (!value) {
    const std::string message = where() + "no " + key + " keyword";
    if (writing_) throw IoError(message);
    throw InputError(message);
  }
  return *value;
}

int File::bitpix() {
  int status = 0, value = 0;
  fits_get_img_type(fptr(handle_), &value, &status);
  check(status, "reading BITPIX");
  return value;
}

std::vector<long> File::axes() {
  int status = 0, naxis = 0;
  fits_get_img_dim(fptr(handle_), &naxis, &status);
  check(status, "reading NAXIS");
  std::vector<long> out(static_cast<std::size_t>(naxis), 0);
  if (naxis > 0) fits_get_img_size(fptr(handle_), naxis, out.data(), &status);
  check(status, "reading the image size");
  return out;
}

long long File::image_pixels(std::size_t expected) {
  const std::vector<long> a = axes();
  std::string problem;
  if (a.size() != 2) {
    problem = "expected a 2D image, got NAXIS = " + std::to_string(a.size());
  } else if (static_cast<std::size_t>(a[0]) * static_cast<std::size_t>(a[1]) != expected) {
    problem = "image is " + std::to_string(a[1]) + " x " + std::to_string(a[0]) + " (ny x nx), expected " +
              std::to_string(expected) + " pixels";
  }
  if (!problem.empty()) {
    if (writing_) throw IoError(where() + problem);
    throw InputError(where() + problem);
  }
  return static_cast<long long>(expected);
}

void File::read_image_float(std::span<float> out) {
  const long long n = image_pixels(out.size());
  int status = 0, any_null = 0;
  long first[2] = {1, 1};
  fits_read_pix(fptr(handle_), TFLOAT, first, n, nullptr, out.data(), &any_null, &status);
  check(status, "reading the image");
}

void File::read_image_uint32(std::span<std::uint32_t> out) {
  const long long n = image_pixels(out.size());
  const int width = bitpix();
  // Read wide, then map negatives back to their unsigned pattern: HST stores DQ bit 15
  // (32768) in a signed 16-bit image as -32768.
  std::vector<long long> wide(out.size());
  int status = 0, any_null = 0;
  long first[2] = {1, 1};
  fits_read_pix(fptr(handle_), TLONGLONG, first, n, nullptr, wide.data(), &any_null, &status);
  check(status, "reading the image");
  const long long wrap = (width > 0 && width < 64) ? (1LL << width) : 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    long long v = wide[i];
    if (v < 0) v += wrap;
    out[i] = static_cast<std::uint32_t>(v);
  }
}

std::vector<float> File::read_image_float() {
  const std::vector<long> a = axes();
  std::vector<float> out(a.size() == 2 ? static_cast<std::size_t>(a[0]) * static_cast<std::size_t>(a[1]) : 0);
  read_image_float(std::span<float>(out));
  return out;
}

std::vector<std::uint32_t> File::read_image_uint32() {
  const std::vector<long> a = axes();
  std::vector<std::uint32_t> out(a.size() == 2 ? static_cast<std::size_t>(a[0]) * static_cast<std::size_t>(a[1]) : 0);
  read_image_uint32(std::span<std::uint32_t>(out));
  return out;
}

namespace {

/// Creates an image extension, names it, and writes `values` of CFITSIO type `datatype`.
template <class T>
void append_image(void* handle, int bitpix, int datatype, const std::string& extname, const std::vector<T>& values,
                  long ny, long nx, int& status) {
  long naxes[2] = {nx, ny};
  fits_create_img(fptr(handle), bitpix, 2, naxes, &status);
  fits_update_key(fptr(handle), TSTRING, "EXTNAME", const_cast<char*>(extname.c_str()), "extension name", &status);
  // CFITSIO's write calls take non-const pointers but do not modify the values.
  fits_write_img(fptr(handle), datatype, 1, static_cast<LONGLONG>(values.size()), const_cast<T*>(values.data()),
                 &status);
}

void check_size(const std::string& path, const std::string& extname, std::size_t values, long ny, long nx) {
  if (ny < 0 || nx < 0 || values != static_cast<std::size_t>(ny) * static_cast<std::size_t>(nx))
    throw IoError(path + ": " + extname + ": " + std::to_string(values) + " values for a " + std::to_string(ny) + " x " +
                  std::to_string(nx) + " image");
}

}  // namespace

void File::append_image_float(const std::string& extname, const std::vector<float>& values, long ny, long nx) {
  check_size(path_, extname, values.size(), ny, nx);
  int status = 0;
  append_image(handle_, FLOAT_IMG, TFLOAT, extname, values, ny, nx, status);
  hdu_ = extname;
  check(status, "writing the image");
}

void File::append_image_int16(const std::string& extname, const std::vector<std::uint16_t>& values, long ny, long nx) {
  check_size(path_, extname, values.size(), ny, nx);
  int status = 0;
  append_image(handle_, SHORT_IMG, TUSHORT, extname, values, ny, nx, status);
  hdu_ = extname;
  check(status, "writing the image");
}

void File::write_key(const std::string& key, double value, const std::string& comment) {
  int status = 0;
  fits_update_key(fptr(handle_), TDOUBLE, key.c_str(), &value, comment.c_str(), &status);
  check(status, "writing keyword " + key);
}

void File::write_key(const std::string& key, int value, const std::string& comment) {
  int status = 0;
  fits_update_key(fptr(handle_), TINT, key.c_str(), &value, comment.c_str(), &status);
  check(status, "writing keyword " + key);
}

void File::write_key(const std::string& key, const std::string& value, const std::string& comment) {
  int status = 0;
  fits_update_key(fptr(handle_), TSTRING, key.c_str(), const_cast<char*>(value.c_str()), comment.c_str(), &status);
  check(status, "writing keyword " + key);
}

}  // namespace tessera::fits

namespace tessera::fits {

void File::read_pixels_float(std::span<float> out, std::size_t first) {
  const std::vector<long> a = axes();
  std::size_t total = a.empty() ? 0 : 1;
  for (long n : a) total *= static_cast<std::size_t>(std::max(n, 0L));
  if (first + out.size() > total)
    throw InputError(where() + "asked for elements " + std::to_string(first) + " to " + std::to_string(first + out.size()) +
                     " of an image of " + std::to_string(total));
  if (out.empty()) return;
  int status = 0, any_null = 0;
  fits_read_img(fptr(handle_), TFLOAT, static_cast<LONGLONG>(first + 1), static_cast<LONGLONG>(out.size()), nullptr,
                out.data(), &any_null, &status);
  check(status, "reading image values (is the file truncated?)");
}

void File::read_pixels_uint32(std::span<std::uint32_t> out, std::size_t first) {
  const std::vector<long> a = axes();
  std::size_t total = a.empty() ? 0 : 1;
  for (long n : a) total *= static_cast<std::size_t>(std::max(n, 0L));
  if (first + out.size() > total)
    throw InputError(where() + "asked for elements " + std::to_string(first) + " to " + std::to_string(first + out.size()) +
                     " of an image of " + std::to_string(total));
  if (out.empty()) return;
  // Read wide, as read_image_uint32 does, so that every bit survives (a float would keep 24).
  const int width = bitpix();
  std::vector<long long> wide(out.size());
  int status = 0, any_null = 0;
  fits_read_img(fptr(handle_), TLONGLONG, static_cast<LONGLONG>(first + 1), static_cast<LONGLONG>(out.size()), nullptr,
                wide.data(), &any_null, &status);
  check(status, "reading image values (is the file truncated?)");
  const long long wrap = (width > 0 && width < 64) ? (1LL << width) : 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    long long v = wide[i];
    if (v < 0) v += wrap;
    out[i] = static_cast<std::uint32_t>(v);
  }
}

bool File::goto_table(const std::string& name) {
  int status = 0;
  std::string mutable_name = name;
  fits_movnam_hdu(fptr(handle_), BINARY_TBL, mutable_name.data(), 0, &status);
  if (status == BAD_HDU_NUM) {
    fits_clear_errmsg();
    return false;
  }
  hdu_ = name;
  check(status, "looking for the table");
  return true;
}

std::size_t File::table_rows() {
  int status = 0;
  long rows = 0;
  fits_get_num_rows(fptr(handle_), &rows, &status);
  check(status, "counting table rows");
  return static_cast<std::size_t>(rows);
}

std::vector<double> File::read_column_double(const std::string& column) {
  int status = 0, number = 0;
  std::string mutable_name = column;
  fits_get_colnum(fptr(handle_), CASEINSEN, mutable_name.data(), &number, &status);
  if (status == COL_NOT_FOUND) {
    fits_clear_errmsg();
    throw InputError(where() + "no column " + column);
  }
  check(status, "looking for column " + column);
  std::vector<double> out(table_rows());
  int any_null = 0;
  if (!out.empty())
    fits_read_col(fptr(handle_), TDOUBLE, number, 1, 1, static_cast<LONGLONG>(out.size()), nullptr, out.data(),
                  &any_null, &status);
  check(status, "reading column " + column);
  return out;
}

namespace {

template <class T>
void append_nd(void* handle, int bitpix, int datatype, const std::string& path, const std::string& extname,
               const std::vector<T>& values, const std::vector<long>& axes, int& status) {
  std::size_t total = axes.empty() ? 0 : 1;
  for (long n : axes) total *= static_cast<std::size_t>(std::max(n, 0L));
  if (total != values.size())
    throw IoError(path + ": " + extname + ": " + std::to_string(values.size()) + " values for an image of " +
                  std::to_string(total));
  std::vector<long> naxes = axes;
  fits_create_img(fptr(handle), bitpix, static_cast<int>(naxes.size()), naxes.data(), &status);
  fits_update_key(fptr(handle), TSTRING, "EXTNAME", const_cast<char*>(extname.c_str()), "extension name", &status);
  if (!values.empty())
    fits_write_img(fptr(handle), datatype, 1, static_cast<LONGLONG>(values.size()), const_cast<T*>(values.data()),
                   &status);
}

}  // namespace

void File::append_image_float(const std::string& extname, const std::vector<float>& values,
                              const std::vector<long>& axes) {
  int status = 0;
  append_nd(handle_, FLOAT_IMG, TFLOAT, path_, extname, values, axes, status);
  hdu_ = extname;
  check(status, "writing the image");
}

void File::append_image_uint16(const std::string& extname, const std::vector<std::uint16_t>& values,
                               const std::vector<long>& axes) {
  int status = 0;
  append_nd(handle_, USHORT_IMG, TUSHORT, path_, extname, values, axes, status);
  hdu_ = extname;
  check(status, "writing the image");
}

void File::append_image_uint32(const std::string& extname, const std::vector<std::uint32_t>& values,
                               const std::vector<long>& axes) {
  int status = 0;
  append_nd(handle_, ULONG_IMG, TUINT, path_, extname, values, axes, status);
  hdu_ = extname;
  check(status, "writing the image");
}

void File::append_table(const std::string& extname,
                        const std::vector<std::pair<std::string, std::vector<double>>>& columns) {
  int status = 0;
  std::vector<std::string> names, forms(columns.size(), "1D");
  for (const auto& c : columns) names.push_back(c.first);
  std::vector<char*> name_ptrs, form_ptrs;
  for (auto& n : names) name_ptrs.push_back(n.data());
  for (auto& f : forms) form_ptrs.push_back(f.data());
  const std::size_t rows = columns.empty() ? 0 : columns.front().second.size();
  for (const auto& c : columns)
    if (c.second.size() != rows) throw IoError(path_ + ": " + extname + ": table columns of different lengths");
  std::string mutable_name = extname;
  fits_create_tbl(fptr(handle_), BINARY_TBL, static_cast<LONGLONG>(rows), static_cast<int>(columns.size()),
                  name_ptrs.data(), form_ptrs.data(), nullptr, mutable_name.data(), &status);
  for (std::size_t i = 0; i < columns.size() && rows > 0; ++i)
    fits_write_col(fptr(handle_), TDOUBLE, static_cast<int>(i + 1), 1, 1, static_cast<LONGLONG>(rows),
                   const_cast<double*>(columns[i].second.data()), &status);
  hdu_ = extname;
  check(status, "writing the table");
}

}  // namespace tessera::fits
