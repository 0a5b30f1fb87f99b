// write_dataset_hdf5 on 1, 2 and 3 ranks: every value reads back whatever the layout,
// including ranks with nothing to write; every raw-data transfer is collective; failures
// are reported on every rank and leave no file; xarray opens the output with no options.
#include <gtest/gtest.h>
#include <mpi.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "support/mpi_world.hpp"
#include "support/shell.hpp"
#include "tessera/io/hdf5_writer.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

int rank() { return tessera::testing::world_rank(); }
int nranks() { return tessera::testing::world_size(); }
std::string out_path(const std::string& name) { return tessera::testing::per_rank_count_path("hdf5_writer_test", name); }

// Known functions of (t, y, x), exact in float32.
float flux(std::size_t t, std::size_t y, std::size_t x) { return 1000.0f * t + 10.0f * y + 0.5f * x + 0.25f; }
std::uint32_t flags(std::size_t t, std::size_t y, std::size_t x) {
  return static_cast<std::uint32_t>(1'000'000 * t + 1000 * y + x);
}
double time_of(std::size_t t) { return 60000.0 + 0.125 * t; }

struct Case {
  std::string name;
  CubeShape shape;
  bool tiles = false;
  std::size_t tile_ny = 0, tile_nx = 0;
};

/// A dataset with a float and a uint32 cube in the case's layout, three frame vectors
/// (one of them "time", one integer), an image with its own dimensions and attributes.
Dataset make_dataset(const Case& c) {
  const CubeShape& s = c.shape;
  Partition partition = c.tiles ? Partition::tiles(s, nranks(), c.tile_ny, c.tile_nx) : Partition::frames(s, nranks());
  Dataset data(s, partition, rank());
  data.add_cube({"data", "electron", "flux"}, ElementType::Float32);
  data.add_cube({"dq", "1", "data quality flags"}, ElementType::UInt32);
  if (c.tiles) {
    auto fill = [&](auto blocks, auto f) {
      for (const auto& block : blocks)
        for (std::size_t y = block.tile.y0; y < block.tile.y1; ++y)
          for (std::size_t x = block.tile.x0; x < block.tile.x1; ++x) {
            auto series = block.series(y, x);
            for (std::size_t t = 0; t < s.nt; ++t) series[t] = f(t, y, x);
          }
    };
    fill(data.tiles<float>("data"), flux);
    fill(data.tiles<std::uint32_t>("dq"), flags);
  } else {
    auto fill = [&](auto slab, auto f) {
      for (std::size_t t = slab.t_begin; t < slab.t_end; ++t)
        for (std::size_t y = 0; y < s.ny; ++y)
          for (std::size_t x = 0; x < s.nx; ++x) slab(t, y, x) = f(t, y, x);
    };
    fill(data.frames<float>("data"), flux);
    fill(data.frames<std::uint32_t>("dq"), flags);
  }
  auto& time = data.add_frame_vector({"time", "d", "mid-exposure time (MJD)"});
  auto& orbit = data.add_frame_vector({"orbit", "1", "orbit number"}, true);
  auto& exptime = data.add_frame_vector({"exptime", "s", "exposure time"});
  for (std::size_t t = 0; t < s.nt; ++t) {
    time.values[t] = time_of(t);
    orbit.values[t] = static_cast<double>(t / 3);
    exptime.values[t] = 100.0 + t;
  }
  Image& direct = data.images()["direct"];
  direct.info = {"direct", "electron/s", "direct image"};
  direct.dim_y = "dy";
  direct.dim_x = "dx";
  direct.ny = 3;
  direct.nx = 4;
  for (int i = 0; i < 12; ++i) direct.values.push_back(1.5f * i);
  data.attributes()["instrument"] = std::string("WFC3/UVIS");
  data.attributes()["scale"] = 2.5;
  data.attributes()["visit"] = std::int64_t{17};
  data.attributes()["origin"] = std::string("dataset");
  return data;
}

std::map<std::string, AttrValue> extra_attributes() {
  return {{"mpi_ranks", std::int64_t{nranks()}},
          {"origin", std::string("extra")},
          {"workflow_toml", std::string(100'000, '#')}};  // over the 64 KiB object-header limit
}

class Writer : public ::testing::TestWithParam<Case> {};

TEST_P(Writer, EveryValueReadsBackAndEveryTransferIsCollective) {
  const Case& c = GetParam();
  const CubeShape& s = c.shape;
  const std::string path = out_path(c.name);
  const Dataset data = make_dataset(c);
  write_dataset_hdf5(data, path, MPI_COMM_WORLD, extra_attributes());

  // Two cubes and two frame vectors besides time (one write each when not empty), plus the
  // coordinates and the image; a tile cube takes one write per round.
  const auto modes = detail::last_hdf5_io_modes();
  EXPECT_FALSE(modes.empty());
  for (const auto& mode : modes) EXPECT_EQ(mode, "contiguous collective") << "on rank " << rank();

  if (rank() == 0) {
    EXPECT_FALSE(fs::exists(path + ".partial"));
    const h5::File file = h5::File::open(path);
    std::vector<float> want_flux;
    std::vector<std::uint32_t> want_flags;
    for (std::size_t t = 0; t < s.nt; ++t)
      for (std::size_t y = 0; y < s.ny; ++y)
        for (std::size_t x = 0; x < s.nx; ++x) {
          want_flux.push_back(flux(t, y, x));
          want_flags.push_back(flags(t, y, x));
        }
    EXPECT_EQ(file.shape("data"), (std::vector<std::size_t>{s.nt, s.ny, s.nx}));
    EXPECT_EQ(file.read_floats("data"), want_flux);
    EXPECT_EQ(file.read_uints("dq"), want_flags);

    std::vector<double> want_time, want_exptime;
    std::vector<std::int64_t> want_orbit, want_y, want_x;
    for (std::size_t t = 0; t < s.nt; ++t) {
      want_time.push_back(time_of(t));
      want_exptime.push_back(100.0 + t);
      want_orbit.push_back(static_cast<std::int64_t>(t / 3));
    }
    for (std::size_t y = 0; y < s.ny; ++y) want_y.push_back(static_cast<std::int64_t>(y));
    for (std::size_t x = 0; x < s.nx; ++x) want_x.push_back(static_cast<std::int64_t>(x));
    EXPECT_EQ(file.read_doubles("time"), want_time);
    EXPECT_EQ(file.read_doubles("exptime"), want_exptime);
    EXPECT_EQ(file.read_ints("orbit"), want_orbit);
    EXPECT_EQ(file.read_ints("y"), want_y);
    EXPECT_EQ(file.read_ints("x"), want_x);

    EXPECT_EQ(file.shape("direct"), (std::vector<std::size_t>{3, 4}));
    EXPECT_EQ(file.read_floats("direct"), data.images().at("direct").values);
    EXPECT_EQ(file.read_ints("dx"), (std::vector<std::int64_t>{0, 1, 2, 3}));

    EXPECT_EQ(file.read_string_attribute("data", "units"), "electron");
    EXPECT_EQ(file.read_string_attribute("dq", "long_name"), "data quality flags");
    EXPECT_EQ(file.read_string_attribute("time", "units"), "d");
    EXPECT_EQ(file.read_string_attribute("y", "units"), "pixel");
    for (const std::string dim : {"time", "y", "x", "dy", "dx"})
      EXPECT_EQ(file.read_string_attribute(dim, "CLASS"), "DIMENSION_SCALE") << dim;

    EXPECT_EQ(std::get<std::string>(file.read_attribute("instrument")), "WFC3/UVIS");
    EXPECT_EQ(std::get<double>(file.read_attribute("scale")), 2.5);
    EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("visit")), 17);
    EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("mpi_ranks")), nranks());
    EXPECT_EQ(std::get<std::string>(file.read_attribute("origin")), "extra");
    EXPECT_EQ(std::get<std::string>(file.read_attribute("workflow_toml")).size(), 100'000u);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove(path);
}

// With 3 ranks, "frames_short" leaves rank 0 without frames and "tiles_one" leaves two
// ranks without tiles; "tiles_uneven" has tiles that do not divide the image and ranks with
// different tile counts; the empty cases have no samples at all.
INSTANTIATE_TEST_SUITE_P(Layouts, Writer,
                         ::testing::Values(Case{"frames", {7, 5, 9}}, Case{"frames_short", {2, 3, 2}},
                                           Case{"frames_empty", {0, 3, 2}}, Case{"tiles_uneven", {7, 5, 9}, true, 2, 4},
                                           Case{"tiles_rows", {7, 5, 9}, true, 1, 9},
                                           Case{"tiles_one", {2, 3, 2}, true, 8, 8},
                                           Case{"tiles_empty", {0, 3, 2}, true, 2, 2}),
                         [](const auto& p) { return p.param.name; });

TEST(WriterFailure, MissingDirectoryFailsOnEveryRankAndLeavesNoFile) {
  const std::string path = (fs::temp_directory_path() / "tessera_no_such_dir" / "out.h5").string();
  const Dataset data = make_dataset({"frames", {7, 5, 9}});
  try {
    write_dataset_hdf5(data, path, MPI_COMM_WORLD, {});
    FAIL() << "expected an IoError on rank " << rank();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ".partial: cannot create the HDF5 file"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("HDF5"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(WriterFailure, BadCubeOnOneRankIsReportedByAllAndLeavesNoFile) {
  const std::string path = out_path("bad_cube");
  Dataset data = make_dataset({"frames", {7, 5, 9}});
  if (rank() == nranks() - 1) std::get<std::vector<float>>(data.cube("data").values).push_back(0.0f);
  try {
    write_dataset_hdf5(data, path, MPI_COMM_WORLD, {});
    FAIL() << "expected an IoError on rank " << rank();
  } catch (const IoError& e) {
    const std::string want = "cube 'data' holds " + std::to_string(data.partition().local_elements(nranks() - 1) + 1) +
                             " values on rank " + std::to_string(nranks() - 1);
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(WriterFailure, ClashingNamesFailOnEveryRankAndLeaveNoFile) {
  const std::string path = out_path("clash");
  Dataset data = make_dataset({"frames", {7, 5, 9}});
  data.add_frame_vector({"data", "1", "same name as a cube"});
  try {
    write_dataset_hdf5(data, path, MPI_COMM_WORLD, {});
    FAIL() << "expected an IoError on rank " << rank();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create dataset 'data'"), std::string::npos) << e.what();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

using tessera::testing::run_command;

TEST(WriterXarray, OpensWithNoOptions) {
  // Every rank skips or none does, so that the collective write below matches up.
  int have_xarray = rank() == 0 && run_command("/usr/bin/python3 -c 'import xarray'").first == 0;
  MPI_Bcast(&have_xarray, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!have_xarray) GTEST_SKIP() << "/usr/bin/python3 lacks xarray";
  const std::string path = out_path("xarray");
  const Case c{"tiles", {7, 5, 9}, true, 2, 4};
  write_dataset_hdf5(make_dataset(c), path, MPI_COMM_WORLD, extra_attributes());
  if (rank() == 0) {
    const std::string script = R"(
import sys, xarray
ds = xarray.open_dataset(sys.argv[1])
assert ds["data"].dims == ("time", "y", "x"), ds["data"].dims
assert dict(ds.sizes) == {"time": 7, "y": 5, "x": 9, "dy": 3, "dx": 4}, dict(ds.sizes)
assert str(ds["data"].dtype) == "float32" and str(ds["dq"].dtype) == "uint32", (ds["data"].dtype, ds["dq"].dtype)
assert str(ds["orbit"].dtype) == "int64" and str(ds["time"].dtype) == "float64"
assert ds["exptime"].dims == ("time",) and ds["direct"].dims == ("dy", "dx")
assert float(ds["data"][6, 4, 8]) == 1000 * 6 + 10 * 4 + 0.5 * 8 + 0.25
assert int(ds["dq"][3, 2, 7]) == 3002007
assert float(ds["data"].sel(time=60000.25, y=1, x=3)) == 2011.75
assert float(ds["direct"][2, 3]) == 16.5
assert ds["data"].attrs["units"] == "electron" and ds["exptime"].attrs["units"] == "s", ds["data"].attrs
assert ds["time"].attrs["units"] == "d" and ds["y"].attrs["units"] == "pixel"
assert ds.attrs["instrument"] == "WFC3/UVIS" and ds.attrs["visit"] == 17 and ds.attrs["origin"] == "extra", ds.attrs
assert ds.attrs["workflow_toml"] == "#" * 100000
print("ok")
)";
    const auto [status, output] = run_command("/usr/bin/python3 -c '" + script + "' " + path);
    EXPECT_EQ(status, 0) << output;
    EXPECT_NE(output.find("ok"), std::string::npos) << output;
    fs::remove(path);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
