// h5::File: what is written reads back, dimensions are netCDF-4 dimension scales, errors
// name the file and carry HDF5's own text, and xarray opens the result with no options.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "tessera/errors.hpp"
#include "support/shell.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

/// A file name unique to this test and process, removed at the end of the test.
class TempPath {
 public:
  TempPath() {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::temp_directory_path() / ("tessera_hdf5_file_test_" + std::string(test->name()) + "_" +
                                          std::to_string(getpid()) + ".h5"))
                .string();
  }
  ~TempPath() { fs::remove(path_); }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

/// Writes the file most tests read: a time coordinate, vectors on it and on an index
/// dimension, an image with its own dimensions and one attribute of each kind.
void write_sample(const std::string& path) {
  h5::File file = h5::File::create(path);
  file.write_vector("time", std::vector<double>{0.5, 1.5, 2.5}, "time", {"time", "d", "mid-exposure time"});
  file.write_vector("exptime", std::vector<double>{10, 20, 30}, "time", {"exptime", "s", "exposure time"});
  file.write_vector("orbit", std::vector<std::int64_t>{1, 1, 2}, "time", {"orbit", "1", "orbit number"});
  file.write_vector("cr_charge", std::vector<double>{5, 6, 7, 8}, "cr", {"cr_charge", "electron", "cosmic-ray charge"});
  file.write_image("flat", {1, 2, 3, 4, 5, 6}, 2, 3, "py", "px", {"flat", "1", "flat field"});
  file.set_attribute("title", std::string("sample"));
  file.set_attribute("empty", std::string());
  file.set_attribute("gain", 1.5);
  file.set_attribute("seed", std::int64_t{42});
  file.set_attribute("seed", std::int64_t{43});  // replaces
  file.set_attribute("long_text", std::string(100'000, 'w'));  // over the 64 KiB object-header limit
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Hdf5File, VectorsImagesAndAttributesReadBack) {
  TempPath path;
  write_sample(path.str());
  const h5::File file = h5::File::open(path.str());
  EXPECT_EQ(file.read_doubles("time"), (std::vector<double>{0.5, 1.5, 2.5}));
  EXPECT_EQ(file.read_doubles("exptime"), (std::vector<double>{10, 20, 30}));
  EXPECT_EQ(file.read_ints("orbit"), (std::vector<std::int64_t>{1, 1, 2}));
  EXPECT_EQ(file.read_doubles("orbit"), (std::vector<double>{1, 1, 2}));  // converted while reading
  EXPECT_EQ(file.read_floats("flat"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(file.read_uints("flat"), (std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(file.shape("flat"), (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(file.shape("cr_charge"), (std::vector<std::size_t>{4}));
  EXPECT_EQ(file.read_string_attribute("exptime", "units"), "s");
  EXPECT_EQ(file.read_string_attribute("exptime", "long_name"), "exposure time");
  EXPECT_EQ(file.read_string_attribute("time", "units"), "d");
  EXPECT_EQ(std::get<std::string>(file.read_attribute("title")), "sample");
  EXPECT_EQ(std::get<std::string>(file.read_attribute("empty")), "");
  EXPECT_EQ(std::get<double>(file.read_attribute("gain")), 1.5);
  EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("seed")), 43);
  EXPECT_EQ(std::get<std::string>(file.read_attribute("long_text")), std::string(100'000, 'w'));
  EXPECT_TRUE(file.has("flat"));
  EXPECT_FALSE(file.has("nothing"));
}

TEST(Hdf5File, DimensionsAreScalesWithIndexCoordinates) {
  TempPath path;
  write_sample(path.str());
  const h5::File file = h5::File::open(path.str());
  // H5DSset_scale marks a dataset with CLASS and NAME; netCDF-4 takes NAME as the dimension.
  for (const std::string dim : {"time", "cr", "py", "px"}) {
    ASSERT_TRUE(file.has(dim)) << dim;
    EXPECT_EQ(file.read_string_attribute(dim, "CLASS"), "DIMENSION_SCALE") << dim;
    EXPECT_EQ(file.read_string_attribute(dim, "NAME"), dim);
  }
  // Dimensions without a variable of their name get 0..n-1.
  EXPECT_EQ(file.read_ints("cr"), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(file.read_ints("px"), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(file.read_string_attribute("px", "units"), "1");
  EXPECT_FALSE(file.has("exptime_dim"));
}

TEST(Hdf5File, DimensionLengthMismatchIsAnError) {
  TempPath path;
  h5::File file = h5::File::create(path.str());
  file.write_vector("a", std::vector<double>{1, 2, 3}, "n", {"a", "1", "a"});
  try {
    file.write_vector("b", std::vector<double>{1, 2, 3, 4}, "n", {"b", "1", "b"});
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), "dimension 'n' has length 3")) << e.what();
    EXPECT_TRUE(contains(e.what(), path.str())) << e.what();
  }
  // A coordinate must come before the variables on its dimension.
  EXPECT_THROW(file.write_vector("n", std::vector<double>{1, 2, 3}, "n", {"n", "1", "n"}), IoError);
}

TEST(Hdf5File, ErrorsNameTheFileAndCarryHdf5Text) {
  const std::string missing = (fs::temp_directory_path() / "tessera_no_such_dir" / "missing.h5").string();
  try {
    h5::File::open(missing);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), missing + ": cannot open the HDF5 file")) << e.what();
    EXPECT_TRUE(contains(e.what(), "HDF5")) << e.what();
  }
  try {
    h5::File::create(missing);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), missing + ": cannot create")) << e.what();
  }

  TempPath path;
  write_sample(path.str());
  h5::File file = h5::File::open(path.str());
  try {
    file.read_doubles("nothing");
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), path.str() + ": cannot open dataset 'nothing'")) << e.what();
  }
  EXPECT_THROW(file.read_string_attribute("exptime", "nothing"), IoError);
  EXPECT_THROW(file.set_attribute("x", 1.0), IoError) << "opened read-only";
}

TEST(Hdf5File, MovedFileKeepsWorking) {
  TempPath path;
  h5::File a = h5::File::create(path.str());
  h5::File b = std::move(a);
  b.write_vector("v", std::vector<std::int64_t>{7}, "one", {"v", "1", "v"});
  b = h5::File::open(path.str());  // the created file is closed by the assignment
  EXPECT_EQ(b.read_ints("v"), (std::vector<std::int64_t>{7}));
}

using tessera::testing::run_command;

TEST(Hdf5File, XarrayOpensItWithNoOptions) {
  if (run_command("/usr/bin/python3 -c 'import xarray, h5netcdf'").first != 0) GTEST_SKIP() << "/usr/bin/python3 lacks xarray";
  TempPath path;
  write_sample(path.str());
  // Default engine (netCDF4) and h5netcdf both: the two libraries read dimension scales
  // and text attributes by different code.
  const std::string script = R"(
import sys, xarray
for engine in (None, "h5netcdf"):
    ds = xarray.open_dataset(sys.argv[1], engine=engine)
    assert dict(ds.sizes) == {"time": 3, "cr": 4, "py": 2, "px": 3}, dict(ds.sizes)
    assert ds["exptime"].dims == ("time",), ds["exptime"].dims
    assert ds["flat"].dims == ("py", "px"), ds["flat"].dims
    assert str(ds["flat"].dtype) == "float32" and str(ds["orbit"].dtype) == "int64"
    assert float(ds["exptime"].sel(time=1.5)) == 20.0
    assert float(ds["flat"][1, 2]) == 6.0
    assert ds["exptime"].attrs["units"] == "s", ds["exptime"].attrs
    assert ds["exptime"].attrs["long_name"] == "exposure time"
    assert ds.attrs["title"] == "sample" and ds.attrs["seed"] == 43 and ds.attrs["gain"] == 1.5, ds.attrs
    assert ds.attrs["empty"] == "", repr(ds.attrs["empty"])
    assert ds.attrs["long_text"] == "w" * 100000
    ds.close()
print("ok")
)";
  const auto [status, output] = run_command("/usr/bin/python3 -c '" + script + "' " + path.str());
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(contains(output, "ok")) << output;
}

}  // namespace
