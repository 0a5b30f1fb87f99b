// Reference data specs (steps/common/reference.hpp): numbers, FITS files (SCI, primary HDU,
// DQ, 3D cubes), subarray cuts by SUBSTRT1/2, "@image" from the dataset, and the errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "steps/common/reference.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/logger.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;
using tessera::jwst::load_reference_cube;
using tessera::jwst::load_reference_image;

class TempDir : public tessera::testing::TempDir {
 public:
  TempDir() : tessera::testing::TempDir("reference") {}
};

/// A dataset of 2 integrations of 3 groups of ny × nx pixels at detector pixel
/// (substrt1, substrt2), as jwst_uncal sets its attributes.
struct Fixture {
  Dataset data;
  Logger log{0, Verbosity::Quiet};
  StepContext context;
  Fixture(std::size_t ny, std::size_t nx, std::int64_t substrt1 = 1, std::int64_t substrt2 = 1)
      : data(CubeShape{2, ny, nx, 3}, Partition::frames(CubeShape{2, ny, nx, 3}, 1), 0), context(data, log, nullptr) {
    data.attributes()["substrt1"] = substrt1;
    data.attributes()["substrt2"] = substrt2;
  }
};

/// Detector value at 1-based detector pixel (X, Y) of plane k: 1000 k + 100 Y + X.
float detector_value(std::size_t k, long long X, long long Y) {
  return static_cast<float>(1000 * static_cast<long long>(k) + 100 * Y + X);
}

/// Writes a reference of `planes` × ry × rx placed at (substrt1, substrt2); values follow
/// detector_value, DQ = Y * 16 + X (as bits). `planes` 0 writes a 2D image.
void write_reference(const fs::path& path, std::size_t planes, std::size_t ry, std::size_t rx, long long substrt1,
                     long long substrt2, bool keywords = true, bool with_dq = true, const std::string& ext = "SCI") {
  auto file = fits::File::create(path.string());
  if (keywords) {
    file.write_key("SUBSTRT1", static_cast<int>(substrt1), "");
    file.write_key("SUBSTRT2", static_cast<int>(substrt2), "");
  }
  std::vector<float> values;
  for (std::size_t k = 0; k < std::max<std::size_t>(planes, 1); ++k)
    for (std::size_t y = 0; y < ry; ++y)
      for (std::size_t x = 0; x < rx; ++x)
        values.push_back(detector_value(k, static_cast<long long>(x) + substrt1, static_cast<long long>(y) + substrt2));
  std::vector<long> axes{static_cast<long>(rx), static_cast<long>(ry)};
  if (planes) axes.push_back(static_cast<long>(planes));
  file.append_image_float(ext, values, axes);
  if (with_dq) {
    std::vector<std::uint32_t> dq;
    for (std::size_t y = 0; y < ry; ++y)
      for (std::size_t x = 0; x < rx; ++x)
        dq.push_back(static_cast<std::uint32_t>((static_cast<long long>(y) + substrt2) * 16 +
                                                static_cast<long long>(x) + substrt1) |
                     (1u << 31));
    file.append_image_uint32("DQ", dq, {static_cast<long>(rx), static_cast<long>(ry)});
  }
  file.close();
}

template <class F>
std::string step_error(F&& f) {
  try {
    f();
  } catch (const StepError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no StepError";
  return "";
}

TEST(ReferenceSpec, ScalarSpecs) {
  EXPECT_TRUE(jwst::is_scalar_spec("3.1"));
  EXPECT_TRUE(jwst::is_scalar_spec(" 2e3 "));
  EXPECT_TRUE(jwst::is_scalar_spec("-1"));
  EXPECT_FALSE(jwst::is_scalar_spec("refs/gain.fits"));
  EXPECT_FALSE(jwst::is_scalar_spec("3.1.fits"));
  EXPECT_FALSE(jwst::is_scalar_spec("@gain"));
  EXPECT_FALSE(jwst::is_scalar_spec(""));
}

TEST(ReferenceSpec, ReadsOnlyForDatasetImages) {
  EXPECT_FALSE(jwst::reference_read("3.1", "gain").has_value());
  EXPECT_FALSE(jwst::reference_read("refs/gain.fits", "gain").has_value());
  const auto ref = jwst::reference_read("@gain", "gain");
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->kind, DataKind::Image);
  EXPECT_EQ(ref->name, "gain");
  EXPECT_NE(ref->hint.find("gain"), std::string::npos);
}

TEST(ReferenceImage, Scalar) {
  Fixture f(4, 5);
  const auto ref = load_reference_image("3.25", "gain", f.context);
  EXPECT_TRUE(ref.scalar());
  EXPECT_EQ(ref.at(0), 3.25f);
  EXPECT_EQ(ref.at(19), 3.25f);
  EXPECT_TRUE(ref.dq.empty());
  // A scalar mask: the same bits everywhere.
  const auto mask = load_reference_image("5", "mask", f.context, "DQ");
  EXPECT_TRUE(mask.values.empty());
  EXPECT_EQ(mask.dq, std::vector<std::uint32_t>(20, 5u));
}

TEST(ReferenceImage, FileOfTheDataShape) {
  TempDir dir;
  const fs::path path = dir.path() / "gain.fits";
  write_reference(path, 0, 4, 5, 1, 1);
  Fixture f(4, 5);
  const auto ref = load_reference_image(path.string(), "gain", f.context);
  ASSERT_EQ(ref.values.size(), 20u);
  ASSERT_EQ(ref.dq.size(), 20u);
  for (long long y = 0; y < 4; ++y)
    for (long long x = 0; x < 5; ++x) {
      EXPECT_EQ(ref.values[static_cast<std::size_t>(y * 5 + x)], detector_value(0, x + 1, y + 1));
      EXPECT_EQ(ref.dq[static_cast<std::size_t>(y * 5 + x)], static_cast<std::uint32_t>((y + 1) * 16 + x + 1) | (1u << 31));
    }
  EXPECT_EQ(ref.source, path.string());
}

TEST(ReferenceImage, NoSciAndNoPrimaryImage) {
  TempDir dir;
  const fs::path path = dir.path() / "flat.fits";
  {
    auto file = fits::File::create(path.string());
    file.close();
  }
  // fits::File writes images only as extensions, so the primary-HDU fallback is checked by its
  // message when the primary HDU is empty too.
  Fixture f(2, 2);
  const std::string message = step_error([&] { load_reference_image(path.string(), "superbias", f.context); });
  EXPECT_NE(message.find("superbias: " + path.string() + ": no SCI extension and no image in the primary HDU"),
            std::string::npos)
      << message;
}

TEST(ReferenceImage, FullFrameCutToTheSubarray) {
  TempDir dir;
  const fs::path path = dir.path() / "saturation.fits";
  write_reference(path, 0, 20, 30, 1, 1);  // a "full frame" of 20 x 30
  Fixture f(4, 6, /*substrt1 (x)=*/11, /*substrt2 (y)=*/7);
  const auto ref = load_reference_image(path.string(), "saturation", f.context);
  ASSERT_EQ(ref.values.size(), 24u);
  ASSERT_EQ(ref.dq.size(), 24u);
  for (long long y = 0; y < 4; ++y)
    for (long long x = 0; x < 6; ++x) {
      EXPECT_EQ(ref.values[static_cast<std::size_t>(y * 6 + x)], detector_value(0, 11 + x, 7 + y)) << y << " " << x;
      EXPECT_EQ(ref.dq[static_cast<std::size_t>(y * 6 + x)],
                static_cast<std::uint32_t>((7 + y) * 16 + 11 + x) | (1u << 31));
    }
}

TEST(ReferenceImage, LargerSubarrayReferenceCut) {
  TempDir dir;
  const fs::path path = dir.path() / "superbias.fits";
  write_reference(path, 0, 10, 12, 5, 3);  // covers detector x 5..16, y 3..12
  Fixture f(4, 6, 8, 6);                    // data: x 8..13, y 6..9
  const auto ref = load_reference_image(path.string(), "superbias", f.context);
  for (long long y = 0; y < 4; ++y)
    for (long long x = 0; x < 6; ++x)
      EXPECT_EQ(ref.values[static_cast<std::size_t>(y * 6 + x)], detector_value(0, 8 + x, 6 + y));
}

TEST(ReferenceImage, MaskFromDqOnly) {
  TempDir dir;
  const fs::path path = dir.path() / "mask.fits";
  {
    auto file = fits::File::create(path.string());
    file.append_image_uint32("DQ", {1u << 31, 1024u, 0u, 3u}, {2, 2});
    file.close();
  }
  Fixture f(2, 2);
  const auto mask = load_reference_image(path.string(), "mask", f.context, "DQ");
  EXPECT_TRUE(mask.values.empty());
  EXPECT_EQ(mask.dq, (std::vector<std::uint32_t>{1u << 31, 1024u, 0u, 3u}));
}

TEST(ReferenceImage, DatasetImage) {
  Fixture f(2, 3);
  Image gain;
  gain.info = {"gain", "electron/DN", "gain"};
  gain.ny = 2, gain.nx = 3;
  gain.values = {1, 2, 3, 4, 5, 6};
  f.data.images()["gain"] = gain;
  const auto ref = load_reference_image("@gain", "gain", f.context);
  EXPECT_EQ(ref.values, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  const std::string message = step_error([&] { load_reference_image("@readnoise", "read_noise", f.context); });
  EXPECT_NE(message.find("read_noise"), std::string::npos) << message;
  EXPECT_NE(message.find("no image 'readnoise'"), std::string::npos) << message;
}

TEST(ReferenceCube, PlanesCutAndLimited) {
  TempDir dir;
  const fs::path path = dir.path() / "dark.fits";
  write_reference(path, 5, 10, 12, 1, 1, true, false);
  Fixture f(3, 4, 2, 5);
  const auto all = load_reference_cube(path.string(), "dark", f.context);
  EXPECT_EQ(all.planes, 5u);
  ASSERT_EQ(all.values.size(), 5u * 12);
  EXPECT_TRUE(all.dq.empty());
  for (std::size_t k = 0; k < 5; ++k)
    for (long long y = 0; y < 3; ++y)
      for (long long x = 0; x < 4; ++x)
        EXPECT_EQ(all.plane(k, 12)[y * 4 + x], detector_value(k, 2 + x, 5 + y)) << k << " " << y << " " << x;
  const auto three = load_reference_cube(path.string(), "dark", f.context, "SCI", 3);
  EXPECT_EQ(three.planes, 3u);
  EXPECT_EQ(std::vector<float>(all.values.begin(), all.values.begin() + 36), three.values);
}

TEST(ReferenceCube, OtherExtensionAndScalar) {
  TempDir dir;
  const fs::path path = dir.path() / "linearity.fits";
  write_reference(path, 4, 2, 3, 1, 1, false, false, "COEFFS");
  Fixture f(2, 3);
  const auto coeffs = load_reference_cube(path.string(), "linearity", f.context, "COEFFS");
  EXPECT_EQ(coeffs.planes, 4u);
  EXPECT_EQ(coeffs.plane(3, 6)[5], detector_value(3, 3, 2));
  const auto scalar = load_reference_cube("0.5", "dark", f.context);
  EXPECT_EQ(scalar.planes, 1u);
  EXPECT_EQ(scalar.values, std::vector<float>(6, 0.5f));
  const std::string message = step_error([&] { load_reference_cube(path.string(), "linearity", f.context); });
  EXPECT_NE(message.find("linearity: " + path.string() + ": no SCI extension"), std::string::npos) << message;
}

// --- errors -----------------------------------------------------------------------------------

TEST(ReferenceErrors, SmallerThanTheData) {
  TempDir dir;
  const fs::path path = dir.path() / "sat.fits";
  write_reference(path, 0, 100, 50, 1, 1);
  Fixture f(256, 2048);
  const std::string message = step_error([&] { load_reference_image(path.string(), "saturation", f.context); });
  EXPECT_NE(message.find("saturation: " + path.string() + ": SCI is 100 x 50 but the data are 256 x 2048"),
            std::string::npos)
      << message;
}

TEST(ReferenceErrors, DoesNotCoverTheSubarray) {
  TempDir dir;
  const fs::path path = dir.path() / "superbias.fits";
  write_reference(path, 0, 10, 12, 5, 3);
  Fixture f(4, 6, 14, 3);  // x 14..19 runs past the reference's 16
  const std::string message = step_error([&] { load_reference_image(path.string(), "superbias", f.context); });
  EXPECT_NE(message.find("superbias: " + path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("does not cover"), std::string::npos) << message;
}

TEST(ReferenceErrors, SameSizeOtherSubarray) {
  TempDir dir;
  const fs::path path = dir.path() / "gain.fits";
  write_reference(path, 0, 4, 6, 1, 1);
  Fixture f(4, 6, 1, 200);
  const std::string message = step_error([&] { load_reference_image(path.string(), "gain", f.context); });
  EXPECT_NE(message.find("another subarray"), std::string::npos) << message;
  // Without SUBSTRT keywords a file of the data's size is taken as those pixels.
  write_reference(path, 0, 4, 6, 1, 1, false);
  EXPECT_EQ(load_reference_image(path.string(), "gain", f.context).values.size(), 24u);
}

TEST(ReferenceErrors, MissingFileNotFitsAndPlanes) {
  TempDir dir;
  Fixture f(2, 3);
  std::string message = step_error([&] { load_reference_image((dir.path() / "nope.fits").string(), "gain", f.context); });
  EXPECT_NE(message.find("gain: "), std::string::npos) << message;
  EXPECT_NE(message.find("nope.fits"), std::string::npos) << message;

  const fs::path cube = dir.path() / "cube.fits";
  write_reference(cube, 2, 2, 3, 1, 1);
  message = step_error([&] { load_reference_image(cube.string(), "gain", f.context); });
  EXPECT_NE(message.find("SCI has 2 planes; expected one ny x nx image"), std::string::npos) << message;

  message = step_error([&] { load_reference_image("nan", "gain", f.context); });
  EXPECT_NE(message.find("not a finite number"), std::string::npos) << message;

  const fs::path no_dq = dir.path() / "nodq.fits";
  write_reference(no_dq, 0, 2, 3, 1, 1, true, false);
  message = step_error([&] { load_reference_image(no_dq.string(), "mask", f.context, "DQ"); });
  EXPECT_NE(message.find("mask: " + no_dq.string() + ": no DQ extension"), std::string::npos) << message;
}

}  // namespace
