// hst_flt_dir over small FITS visits written with tessera::fits::File: values, time order,
// orbits, frame selection, and one test per kind of malformed input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "steps/inputs/hst_flt_dir.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"

namespace {

namespace fs = std::filesystem;
using tessera::HstFltDir;

static_assert(tessera::InputKind<HstFltDir>);

class TempDir : public tessera::testing::TempDir {
 public:
  TempDir() : tessera::testing::TempDir("fits_input") {}
};

/// One exposure to write: SCI = level + 10 y + x, ERR = 1 + level / 100, DQ = (y nx + x) · 16.
struct Flt {
  double start = 60000.0;  // MJD
  double exptime = 60;     // s
  std::size_t ny = 4, nx = 5;
  float level = 0;
  bool with_dq = true;
  bool integer_sci = false;
  std::size_t err_nx = 0;  // 0: same as nx
};

float sci_value(const Flt& f, std::size_t y, std::size_t x) {
  return f.level + 10.0f * static_cast<float>(y) + static_cast<float>(x);
}
std::uint32_t dq_value(const Flt& f, std::size_t y, std::size_t x) {
  return static_cast<std::uint32_t>((y * f.nx + x) * 16);
}

void write_flt(const fs::path& path, const Flt& f) {
  fs::create_directories(path.parent_path());
  auto file = tessera::fits::File::create(path.string());
  file.write_key("EXPSTART", f.start, "MJD");
  file.write_key("EXPEND", f.start + f.exptime / 86400.0, "MJD");
  file.write_key("EXPTIME", f.exptime, "s");
  file.write_key("TARGNAME", std::string("TEST-STAR"), "target");
  const long ny = static_cast<long>(f.ny), nx = static_cast<long>(f.nx);
  std::vector<float> sci(f.ny * f.nx);
  std::vector<std::uint16_t> sci_int(f.ny * f.nx), dq(f.ny * f.nx);
  for (std::size_t y = 0; y < f.ny; ++y)
    for (std::size_t x = 0; x < f.nx; ++x) {
      sci[y * f.nx + x] = sci_value(f, y, x);
      sci_int[y * f.nx + x] = static_cast<std::uint16_t>(sci_value(f, y, x));
      dq[y * f.nx + x] = static_cast<std::uint16_t>(dq_value(f, y, x));
    }
  if (f.integer_sci) {
    file.append_image_int16("SCI", sci_int, ny, nx);
  } else {
    file.append_image_float("SCI", sci, ny, nx);
  }
  const std::size_t err_nx = f.err_nx ? f.err_nx : f.nx;
  file.append_image_float("ERR", std::vector<float>(f.ny * err_nx, 1.0f + f.level / 100.0f), ny,
                          static_cast<long>(err_nx));
  if (f.with_dq) file.append_image_int16("DQ", dq, ny, nx);
  file.close();
}

std::unique_ptr<tessera::FrameSource> open_visit(const TempDir& dir, bool skip_fm = false, bool skip_or = false) {
  tessera::HstFltDirParams p;
  p.path = dir.str();
  p.skip_first_fm = skip_fm;
  p.skip_first_or = skip_or;
  return HstFltDir::open(p);
}

std::vector<tessera::UnitHeader> read_headers(tessera::FrameSource& source) {
  std::vector<tessera::UnitHeader> headers;
  for (std::size_t i = 0; i < source.units().size(); ++i) headers.push_back(source.read_header(i));
  return headers;
}

const tessera::FrameVector& vector_named(const tessera::FrameOrder& order, const std::string& name) {
  for (const auto& v : order.vectors)
    if (v.info.name == name) return v;
  throw std::runtime_error("no frame vector " + name);
}

std::vector<double> values_of(const tessera::FrameOrder& order, const std::string& name) {
  return vector_named(order, name).values;
}

/// Two orbits of three 60 s exposures, 2 min apart; orbit 1 starts 96 min after orbit 0.
void write_two_orbits(const TempDir& dir) {
  for (int orbit = 0; orbit < 2; ++orbit)
    for (int k = 0; k < 3; ++k) {
      Flt f;
      f.start = 60000.0 + (orbit * 96.0 + k * 2.0) / 1440.0;
      f.level = static_cast<float>(100 * orbit + k);
      char name[32];
      std::snprintf(name, sizeof name, "o%dk%d_flt.fits", orbit, k);
      write_flt(dir.path() / "specimages" / name, f);
    }
}

/// The message of the InputError `call` throws, or a failure.
template <class F>
std::string input_error_of(F&& call) {
  try {
    call();
  } catch (const tessera::InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError thrown";
  return "";
}

TEST(FitsFile, RoundTripsImagesAndKeywords) {
  TempDir dir;
  const std::string path = (dir.path() / "a.fits").string();
  {
    auto f = tessera::fits::File::create(path);
    f.write_key("EXPTIME", 12.5, "s");
    f.write_key("TARGNAME", std::string("WASP-127"), "target");
    f.append_image_float("SCI", {1, 2, 3, 4, 5, 6}, 2, 3);
    f.write_key("EXTVER", 1, "version");
    f.append_image_int16("DQ", {0, 16, 256, 4096, 16384, 32767}, 2, 3);
    f.close();
  }
  auto f = tessera::fits::File::open_read(path);
  EXPECT_EQ(f.require_double("EXPTIME"), 12.5);
  EXPECT_EQ(f.read_string("TARGNAME").value(), "WASP-127");
  EXPECT_FALSE(f.read_double("NOSUCHKEY").has_value());
  EXPECT_FALSE(f.goto_extension("ERR"));
  ASSERT_TRUE(f.goto_extension("SCI", 1));
  EXPECT_EQ(f.bitpix(), -32);
  EXPECT_EQ(f.axes(), (std::vector<long>{3, 2}));
  EXPECT_EQ(f.read_image_float(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  ASSERT_TRUE(f.goto_extension("DQ"));
  EXPECT_EQ(f.bitpix(), 16);
  EXPECT_EQ(f.read_image_uint32(), (std::vector<std::uint32_t>{0, 16, 256, 4096, 16384, 32767}));
  std::vector<float> wrong_size(5);
  ASSERT_TRUE(f.goto_extension("SCI"));
  EXPECT_THROW(f.read_image_float(std::span<float>(wrong_size)), tessera::InputError);
  f.goto_primary();
  const std::string missing = input_error_of([&] { f.require_double("EXPSTART"); });
  EXPECT_EQ(missing, path + ": primary HDU: no EXPSTART keyword");
}

TEST(FitsFile, OpenErrorsStartWithThePathAndEndWithCfitsioText) {
  TempDir dir;
  const std::string path = (dir.path() / "nothing.fits").string();
  const std::string message = input_error_of([&] { tessera::fits::File::open_read(path); });
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("could not open the named file"), std::string::npos) << message;  // CFITSIO's words
}

TEST(HstFltDir, SchemaDocumentsEveryParameter) {
  const auto docs = tessera::HstFltDirParams::schema().docs();
  ASSERT_EQ(docs.size(), 4u);
  for (const auto& d : docs) EXPECT_FALSE(d.doc.empty()) << d.name;
  EXPECT_EQ(docs[0].name, "path");
  EXPECT_TRUE(docs[0].required);
  EXPECT_EQ(docs[3].name, "orbit_gap_minutes");
  EXPECT_EQ(docs[3].constraint, "> 0.0");
}

TEST(HstFltDir, OpenTouchesNothing) {
  tessera::HstFltDirParams p;
  p.path = "/no/such/visit";
  auto source = HstFltDir::open(p);
  ASSERT_NE(source, nullptr);
  const auto provides = source->provides();
  // Three cubes, four frame vectors, and the direct image: a visit that does not exist is
  // reported when it is read, naming the path, not as a missing direct image.
  EXPECT_EQ(provides.size(), 8u);
}

TEST(HstFltDir, NoDirectImageWithoutDirectimagesFolder) {
  TempDir dir;
  write_flt(dir.path() / "specimages" / "a_flt.fits", Flt{});
  tessera::HstFltDirParams p;
  p.path = dir.path().string();
  const auto provides = HstFltDir::open(p)->provides();
  EXPECT_EQ(provides.size(), 7u);
  for (const auto& out : provides) EXPECT_NE(out.info.name, "direct_image");
}

TEST(HstFltDir, ReadsFramesInTimeOrder) {
  TempDir dir;
  // Name order a, b, c; time order c, a, b.
  Flt a, b, c;
  a.start = 60000.010, a.level = 1000;
  b.start = 60000.020, b.level = 2000;
  c.start = 60000.000, c.level = 3000;
  write_flt(dir.path() / "specimages" / "a_flt.fits", a);
  write_flt(dir.path() / "specimages" / "b_flt.fits", b);
  write_flt(dir.path() / "specimages" / "c_flt.fits", c);
  write_flt(dir.path() / "specimages" / "ignored.fits", a);  // not *_flt.fits

  auto source = open_visit(dir);
  const auto units = source->units();
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(fs::path(units[0]).filename(), "a_flt.fits");
  const auto headers = read_headers(*source);
  EXPECT_EQ(headers[1].ny, 4);
  EXPECT_EQ(headers[1].nx, 5);
  EXPECT_DOUBLE_EQ(headers[1].values[HstFltDir::expstart_index], 60000.020);
  EXPECT_DOUBLE_EQ(headers[1].values[HstFltDir::exptime_index], 60);

  const tessera::FrameOrder order = source->arrange(headers);
  EXPECT_EQ(order.units, (std::vector<std::size_t>{2, 0, 1}));
  EXPECT_EQ(order.shape, (tessera::CubeShape{3, 4, 5}));
  const auto time = values_of(order, "time");
  EXPECT_NEAR(time[0], 60000.000 + 30.0 / 86400.0, 1e-9);
  EXPECT_NEAR(time[2], 60000.020 + 30.0 / 86400.0, 1e-9);
  EXPECT_EQ(vector_named(order, "time").info.units, "d");
  EXPECT_EQ(vector_named(order, "exptime").info.units, "s");
  EXPECT_TRUE(vector_named(order, "orbit").integer);
  EXPECT_TRUE(vector_named(order, "frame_in_orbit").integer);

  tessera::Dataset data(order.shape, tessera::Partition::frames(order.shape, 1), 0);
  for (const auto& cube : source->cubes()) data.add_cube(cube.info, cube.type);
  for (std::size_t t = 0; t < order.shape.nt; ++t) source->read_frame(order.units[t], t, data);
  auto sci = data.frames<float>("data");
  auto err = data.frames<float>("err");
  auto dq = data.frames<std::uint32_t>("dq");
  const Flt* in_time_order[] = {&c, &a, &b};
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t y = 0; y < 4; ++y)
      for (std::size_t x = 0; x < 5; ++x) {
        EXPECT_EQ(sci(t, y, x), sci_value(*in_time_order[t], y, x));
        EXPECT_EQ(err(t, y, x), 1.0f + in_time_order[t]->level / 100.0f);
        EXPECT_EQ(dq(t, y, x), dq_value(*in_time_order[t], y, x));
      }
  EXPECT_EQ(data.cube("dq").info.long_name, "HST data quality flags (bitwise)");
}

TEST(HstFltDir, FindsOrbitsAtGaps) {
  TempDir dir;
  write_two_orbits(dir);
  auto source = open_visit(dir);
  const auto order = source->arrange(read_headers(*source));
  EXPECT_EQ(order.shape.nt, 6u);
  EXPECT_EQ(values_of(order, "orbit"), (std::vector<double>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(values_of(order, "frame_in_orbit"), (std::vector<double>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(values_of(order, "exptime"), (std::vector<double>(6, 60.0)));

  tessera::HstFltDirParams one_orbit;
  one_orbit.path = dir.str();
  one_orbit.orbit_gap_minutes = 200;  // longer than the occultation: everything is one orbit
  auto merged = HstFltDir::open(one_orbit);
  EXPECT_EQ(values_of(merged->arrange(read_headers(*merged)), "orbit"), (std::vector<double>(6, 0.0)));
}

TEST(HstFltDir, SkipFirstFrameOfEachOrbit) {
  TempDir dir;
  write_two_orbits(dir);
  auto source = open_visit(dir, /*skip_fm=*/true);
  const auto order = source->arrange(read_headers(*source));
  EXPECT_EQ(order.shape.nt, 4u);
  EXPECT_EQ(order.units, (std::vector<std::size_t>{1, 2, 4, 5}));
  EXPECT_EQ(values_of(order, "orbit"), (std::vector<double>{0, 0, 1, 1}));
  EXPECT_EQ(values_of(order, "frame_in_orbit"), (std::vector<double>{1, 2, 1, 2}));
}

TEST(HstFltDir, SkipFirstOrbit) {
  TempDir dir;
  write_two_orbits(dir);
  auto source = open_visit(dir, false, /*skip_or=*/true);
  const auto order = source->arrange(read_headers(*source));
  EXPECT_EQ(order.units, (std::vector<std::size_t>{3, 4, 5}));
  EXPECT_EQ(values_of(order, "orbit"), (std::vector<double>{1, 1, 1}));

  auto both = open_visit(dir, true, true);
  const auto thinned = both->arrange(read_headers(*both));
  EXPECT_EQ(thinned.units, (std::vector<std::size_t>{4, 5}));
  tessera::Dataset data(thinned.shape, tessera::Partition::frames(thinned.shape, 1), 0);
  for (const auto& cube : both->cubes()) data.add_cube(cube.info, cube.type);
  for (std::size_t t = 0; t < thinned.shape.nt; ++t) both->read_frame(thinned.units[t], t, data);
  EXPECT_EQ(data.frames<float>("data")(1, 0, 0), 102.0f);  // orbit 1, frame 2
}

TEST(HstFltDir, SkippingEverythingIsAnError) {
  TempDir dir;
  Flt f;
  write_flt(dir.path() / "specimages" / "only_flt.fits", f);
  auto source = open_visit(dir, false, true);
  const std::string message = input_error_of([&] { source->arrange(read_headers(*source)); });
  EXPECT_NE(message.find(dir.str()), std::string::npos) << message;
  EXPECT_NE(message.find("no frames"), std::string::npos) << message;
}

TEST(HstFltDir, ReadsEarliestDirectImageAndAttributes) {
  TempDir dir;
  write_two_orbits(dir);
  Flt late, early;
  late.start = 60000.5, late.level = 7;
  early.start = 59999.9, early.level = 5, early.ny = 3, early.nx = 2;
  write_flt(dir.path() / "directimages" / "d1_flt.fits", late);
  write_flt(dir.path() / "directimages" / "d2_flt.fits", early);

  auto source = open_visit(dir);
  const auto order = source->arrange(read_headers(*source));
  bool provides_image = false;
  for (const auto& p : source->provides())
    provides_image |= p.kind == tessera::DataKind::Image && p.info.name == "direct_image";
  EXPECT_TRUE(provides_image);

  tessera::Dataset data(order.shape, tessera::Partition::frames(order.shape, 1), 0);
  source->read_extras(data);
  const tessera::Image& image = data.image("direct_image");
  EXPECT_EQ(image.ny, 3u);
  EXPECT_EQ(image.nx, 2u);
  EXPECT_EQ(image.dim_y, "direct_y");
  EXPECT_EQ(image.dim_x, "direct_x");
  EXPECT_EQ(image.info.units, "electron");
  EXPECT_EQ(image.values[1 * 2 + 1], sci_value(early, 1, 1));
  EXPECT_EQ(std::get<std::string>(data.attributes().at("input_path")), dir.str());
  EXPECT_EQ(std::get<std::string>(data.attributes().at("targname")), "TEST-STAR");
}

TEST(HstFltDir, NoDirectImagesNoImage) {
  TempDir dir;
  write_two_orbits(dir);
  auto source = open_visit(dir);
  const auto order = source->arrange(read_headers(*source));
  tessera::Dataset data(order.shape, tessera::Partition::frames(order.shape, 1), 0);
  source->read_extras(data);
  EXPECT_TRUE(data.images().empty());
  for (const auto& p : source->provides()) EXPECT_NE(p.kind, tessera::DataKind::Image);
}

// ---- malformed input: each message names the file (or directory) and what is wrong ----

TEST(HstFltDirErrors, MissingDirectory) {
  TempDir dir;
  tessera::HstFltDirParams p;
  p.path = (dir.path() / "missing_visit").string();
  auto source = HstFltDir::open(p);
  const std::string message = input_error_of([&] { source->units(); });
  EXPECT_EQ(message.rfind(p.path + ": ", 0), 0u) << message;
}

TEST(HstFltDirErrors, EmptySpecimages) {
  TempDir dir;
  fs::create_directories(dir.path() / "specimages");
  auto source = open_visit(dir);
  const std::string message = input_error_of([&] { source->units(); });
  EXPECT_EQ(message, (dir.path() / "specimages").string() + ": no *_flt.fits files");
}

TEST(HstFltDirErrors, GarbageFile) {
  TempDir dir;
  Flt f;
  write_flt(dir.path() / "specimages" / "good_flt.fits", f);
  fs::create_directories(dir.path() / "specimages");
  std::ofstream(dir.path() / "specimages" / "junk_flt.fits") << "this is not a FITS file\n";
  auto source = open_visit(dir);
  source->units();
  const std::string message = input_error_of([&] { source->read_header(1); });
  const std::string file = (dir.path() / "specimages" / "junk_flt.fits").string();
  EXPECT_EQ(message.rfind(file + ": ", 0), 0u) << message;
}

TEST(HstFltDirErrors, MissingDqExtension) {
  TempDir dir;
  Flt f;
  f.with_dq = false;
  const fs::path file = dir.path() / "specimages" / "or02fm003_flt.fits";
  write_flt(file, f);
  auto source = open_visit(dir);
  source->units();
  EXPECT_EQ(input_error_of([&] { source->read_header(0); }), file.string() + ": no DQ extension");
}

TEST(HstFltDirErrors, ShapesDifferBetweenFiles) {
  TempDir dir;
  Flt first, second;
  first.start = 60000.0;
  second.start = 60000.1, second.nx = 6;
  write_flt(dir.path() / "specimages" / "b_flt.fits", first);
  write_flt(dir.path() / "specimages" / "a_flt.fits", second);  // later in time, first by name
  auto source = open_visit(dir);
  const auto headers = read_headers(*source);
  const std::string message = input_error_of([&] { source->arrange(headers); });
  const std::string later = (dir.path() / "specimages" / "a_flt.fits").string();
  EXPECT_EQ(message.rfind(later + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("4 x 6"), std::string::npos) << message;
  EXPECT_NE(message.find("4 x 5"), std::string::npos) << message;
  EXPECT_NE(message.find("b_flt.fits"), std::string::npos) << message;
}

TEST(HstFltDirErrors, ExtensionShapesDisagree) {
  TempDir dir;
  Flt f;
  f.err_nx = 7;
  const fs::path file = dir.path() / "specimages" / "x_flt.fits";
  write_flt(file, f);
  auto source = open_visit(dir);
  source->units();
  EXPECT_EQ(input_error_of([&] { source->read_header(0); }),
            file.string() + ": ERR extension is 4 x 7 but SCI is 4 x 5 (ny x nx)");
}

TEST(HstFltDirErrors, IntegerSci) {
  TempDir dir;
  Flt f;
  f.integer_sci = true;
  const fs::path file = dir.path() / "specimages" / "int_flt.fits";
  write_flt(file, f);
  auto source = open_visit(dir);
  source->units();
  const std::string message = input_error_of([&] { source->read_header(0); });
  EXPECT_EQ(message.rfind(file.string() + ": SCI extension holds integers (BITPIX 16)", 0), 0u) << message;
}

TEST(HstFltDirErrors, MissingExpstart) {
  TempDir dir;
  const fs::path file = dir.path() / "specimages" / "nokey_flt.fits";
  fs::create_directories(file.parent_path());
  {
    auto f = tessera::fits::File::create(file.string());
    f.append_image_float("SCI", std::vector<float>(4, 0.0f), 2, 2);
    f.close();
  }
  auto source = open_visit(dir);
  source->units();
  EXPECT_EQ(input_error_of([&] { source->read_header(0); }), file.string() + ": primary HDU: no EXPSTART keyword");
}

TEST(HstFltDirErrors, FileChangedAfterHeadersWereRead) {
  TempDir dir;
  Flt f;
  const fs::path file = dir.path() / "specimages" / "x_flt.fits";
  write_flt(file, f);
  auto source = open_visit(dir);
  const auto order = source->arrange(read_headers(*source));
  tessera::Dataset data(order.shape, tessera::Partition::frames(order.shape, 1), 0);
  for (const auto& cube : source->cubes()) data.add_cube(cube.info, cube.type);
  f.ny = 3;
  write_flt(file, f);
  EXPECT_EQ(input_error_of([&] { source->read_frame(0, 0, data); }),
            file.string() + ": frame is 3 x 5 but the visit's frames are 4 x 5 (ny x nx)");
}

}  // namespace
