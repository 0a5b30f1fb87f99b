// The inputs that feed rate cubes to the spectral steps:
// - tessera_h5 over a Tessera-like file written here with h5::File (cubes with NaN and high DQ
//   bits, a grouped cube, vectors, 2D, 1D and coordinate images, attributes with provenance):
//   everything reads back bit for bit with units and dimension names, on 1, 2 and 3 emulated
//   ranks, with `cubes` and `frames`; one test per kind of bad file;
// - jwst_rateints over two tiny rateints segments written with fits::File: values (DQ bits
//   above 2^24), units from BUNIT, times, attributes, optional variances, a 2D DQ; bad input;
// - `tessera run` chaining: rateints -> out1.h5 -> (tessera_h5) out2.h5 on 1 and 2 ranks, the
//   re-written file equal to its input, provenance not carried over.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <set>

#include "steps/inputs/jwst_rateints.hpp"
#include "steps/inputs/tessera_h5.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace {

namespace fs = std::filesystem;
using tessera::JwstRateints;
using tessera::TesseraH5;

static_assert(tessera::InputKind<TesseraH5>);
static_assert(tessera::InputKind<JwstRateints>);

class TempDir : public tessera::testing::TempDir {
 public:
  TempDir() : tessera::testing::TempDir("spectra_inputs") {}
};

// --- engine emulation -------------------------------------------------------------------------

/// What the engine does on one rank: list, read every header, arrange, read this rank's frames
/// into a Dataset, read extras.
struct RankRead {
  tessera::FrameOrder order;
  tessera::Dataset data;
};

RankRead read_rank(tessera::FrameSource& source, int nranks = 1, int rank = 0) {
  RankRead out;
  const auto units = source.units();
  std::vector<tessera::UnitHeader> headers;
  for (std::size_t i = 0; i < units.size(); ++i) headers.push_back(source.read_header(i));
  out.order = source.arrange(headers);
  out.data = tessera::Dataset(out.order.shape, tessera::Partition::frames(out.order.shape, nranks), rank);
  for (const auto& cube : source.cubes()) out.data.add_cube(cube.info, cube.type, 0.0, cube.grouped);
  for (auto& v : out.order.vectors) out.data.frame_vectors()[v.info.name] = v;
  for (std::size_t t = out.data.partition().frame_begin(rank); t < out.data.partition().frame_end(rank); ++t)
    source.read_frame(out.order.units[t], t, out.data);
  source.read_extras(out.data);
  return out;
}

template <class Input>
RankRead read_with(const typename Input::Params& p, int nranks = 1, int rank = 0) {
  auto source = Input::open(p);
  return read_rank(*source, nranks, rank);
}

/// The message of the InputError `f` throws (fails the test when it throws nothing).
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const tessera::InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// Bitwise equality of float arrays (NaN equal to the same NaN).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

const tessera::FrameVector& vector_of(const tessera::FrameOrder& order, const std::string& name) {
  for (const auto& v : order.vectors)
    if (v.info.name == name) return v;
  throw std::runtime_error("no vector " + name);
}

std::map<std::string, tessera::DataOut> by_name(const std::vector<tessera::DataOut>& list) {
  std::map<std::string, tessera::DataOut> out;
  for (const auto& d : list) out[d.info.name] = d;
  return out;
}

std::vector<float> frames_of(const std::vector<float>& cube, std::size_t per_frame, std::size_t first, std::size_t last) {
  return {cube.begin() + static_cast<std::ptrdiff_t>(first * per_frame),
          cube.begin() + static_cast<std::ptrdiff_t>(last * per_frame)};
}

// --- a Tessera-like file ----------------------------------------------------------------------

constexpr std::size_t kNt = 5, kNy = 3, kNx = 4, kNg = 3, kNw = 6;

/// The values of the sample file (also what must come back).
struct Sample {
  std::vector<double> time, bjd;
  std::vector<std::int64_t> integration;
  std::vector<float> data, err, var_poisson, ramp, flux, white_f32, wavelength, sensitivity, badpix, depth;
  std::vector<std::uint32_t> dq;
  std::vector<double> data64;  // a float64 (time, y, x) variable: not a cube
};

Sample sample_values() {
  Sample s;
  for (std::size_t t = 0; t < kNt; ++t) {
    s.time.push_back(60100.25 + 0.001 * static_cast<double>(t) + 1e-12);
    s.bjd.push_back(60100.2508 + 0.001 * static_cast<double>(t));
    s.integration.push_back(static_cast<std::int64_t>(t) + 11);
    s.white_f32.push_back(1.0f - 0.001f * static_cast<float>(t));
  }
  for (std::size_t i = 0; i < kNt * kNy * kNx; ++i) {
    s.data.push_back(static_cast<float>(i) * 0.3183099f + 1e-7f);
    s.err.push_back(std::sqrt(static_cast<float>(i) + 0.5f));
    s.var_poisson.push_back(static_cast<float>(i) / 7.0f);
    s.dq.push_back(i % 3 == 0 ? 0x80000001u : static_cast<std::uint32_t>(i) * 0x01010101u);
    s.data64.push_back(static_cast<double>(i) / 3.0);
  }
  s.data[7] = std::numeric_limits<float>::quiet_NaN();
  s.data[8] = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < kNt * kNg * kNy * kNx; ++i) s.ramp.push_back(1000.0f + static_cast<float>(i) / 9.0f);
  for (std::size_t i = 0; i < kNt * kNw; ++i) s.flux.push_back(100.0f + static_cast<float>(i) / 11.0f);
  s.flux[3] = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t w = 0; w < kNw; ++w) {
    s.wavelength.push_back(0.85f + 0.1f * static_cast<float>(w) / 3.0f);
    s.sensitivity.push_back(1.0f + static_cast<float>(w) / 13.0f);
  }
  for (std::size_t i = 0; i < kNy * kNx; ++i) s.badpix.push_back(static_cast<float>(i % 5));
  s.depth = {1200.5f, 1300.25f};
  return s;
}

/// Writes the sample as the writer lays a Tessera output out (engine/src/io/hdf5_writer.cpp):
/// time coordinate first, cubes over (time, y, x) and (time, group, y, x), vectors, the
/// coordinate image before the images over its dimension, root attributes.
void write_sample(const std::string& path, bool with_data = true, bool with_xy = true) {
  const Sample s = sample_values();
  auto file = tessera::h5::File::create(path);
  file.write_vector("time", s.time, "time", {"time", "d", "mid-integration time (MJD UTC)"});
  const std::vector<std::string> cube{"time", "y", "x"};
  const std::vector<std::size_t> shape{kNt, kNy, kNx};
  if (with_xy) {
    file.write_array("group", std::vector<std::int64_t>{0, 1, 2}, {"group"}, {kNg}, {"group", "1", "group index"});
    file.write_array("y", std::vector<std::int64_t>{0, 1, 2}, {"y"}, {kNy}, {"y", "pixel", "pixel row"});
    file.write_array("x", std::vector<std::int64_t>{0, 1, 2, 3}, {"x"}, {kNx}, {"x", "pixel", "pixel column"});
    if (with_data) file.write_array("data", s.data, cube, shape, {"data", "DN/s", "rate"});
    file.write_array("dq", s.dq, cube, shape, {"dq", "1", "JWST pixel DQ"});
    file.write_array("err", s.err, cube, shape, {"err", "DN/s", "total error"});
    file.write_array("ramp", s.ramp, {"time", "group", "y", "x"}, {kNt, kNg, kNy, kNx}, {"ramp", "DN", "ramps"});
    file.write_array("var_poisson", s.var_poisson, cube, shape, {"var_poisson", "DN2/s2", "Poisson variance"});
    file.write_array("data64", s.data64, cube, shape, {"data64", "1", "float64 cube-shaped variable"});
    file.write_image("badpix", s.badpix, kNy, kNx, "y", "x", {"badpix", "1", "flagged frames per pixel"});
  }
  file.write_vector("int_mid_bjd", s.bjd, "time", {"int_mid_bjd", "d", "BJD TDB"});
  file.write_vector("integration", s.integration, "time", {"integration", "1", "integration number"});
  // The engine's own count of the upstream run's non-finite input: not read back.
  file.write_vector("nonfinite_input", std::vector<std::int64_t>(kNt, 7), "time", {"nonfinite_input", "1", "count"});
  file.write_array("white_f32", s.white_f32, {"time"}, {kNt}, {"white_f32", "1", "a float32 1D image over time"});
  file.write_array("wavelength", s.wavelength, {"wavelength"}, {kNw}, {"wavelength", "micron", "wavelength"});
  file.write_image("flux", s.flux, kNt, kNw, "time", "wavelength", {"flux", "DN/s", "extracted flux"});
  file.write_array("sensitivity", s.sensitivity, {"wavelength"}, {kNw}, {"sensitivity", "1", "scatter / error"});
  file.write_array("depth", s.depth, {"bin"}, {2}, {"depth", "ppm", "transit depth per bin"});
  file.set_attribute("instrument", std::string("NIRISS"));
  file.set_attribute("tgroup", 5.494);
  file.set_attribute("nints", std::int64_t{500});
  file.set_attribute("empty_text", std::string());
  // Provenance that `tessera run` writes for itself: not read back.
  file.set_attribute("tessera_version", std::string("0.1.0"));
  file.set_attribute("workflow_toml", std::string("[workflow]\nname = 'x'\n"));
  file.set_attribute("mpi_ranks", std::int64_t{3});
  file.set_attribute("step.ramp_fit", std::string("uses = \"ramp_fit\""));
  file.set_attribute("_NCProperties", std::string("version=2"));
}

tessera::TesseraH5Params h5_params(const std::string& path) {
  tessera::TesseraH5Params p;
  p.path = path;
  return p;
}

// --- tessera_h5 -------------------------------------------------------------------------------

TEST(TesseraH5, SchemaDocumentsEveryParameter) {
  const auto docs = tessera::TesseraH5Params::schema().docs();
  ASSERT_EQ(docs.size(), 3u);
  for (const auto& d : docs) EXPECT_FALSE(d.doc.empty()) << d.name;
  EXPECT_EQ(docs[0].name, "path");
  EXPECT_EQ(docs[0].default_text, "(required)");
}

TEST(TesseraH5, ReadsCubesVectorsImagesAndAttributesBitForBit) {
  TempDir dir;
  const std::string path = (dir.path() / "rateints.h5").string();
  write_sample(path);
  const Sample s = sample_values();
  RankRead r = read_with<TesseraH5>(h5_params(path));

  EXPECT_EQ(r.order.shape, (tessera::CubeShape{kNt, kNy, kNx, 1}));
  EXPECT_EQ(r.order.units, std::vector<std::size_t>(kNt, 0));
  // Cubes: every float32/uint32 (time, y, x) variable; not the grouped ramp, not float64.
  std::set<std::string> cubes;
  for (const auto& [name, cube] : r.data.cubes()) cubes.insert(name);
  EXPECT_EQ(cubes, (std::set<std::string>{"data", "dq", "err", "var_poisson"}));
  EXPECT_TRUE(same_bits(std::get<std::vector<float>>(r.data.cube("data").values), s.data));
  EXPECT_TRUE(same_bits(std::get<std::vector<float>>(r.data.cube("err").values), s.err));
  EXPECT_TRUE(same_bits(std::get<std::vector<float>>(r.data.cube("var_poisson").values), s.var_poisson));
  EXPECT_EQ(std::get<std::vector<std::uint32_t>>(r.data.cube("dq").values), s.dq);
  EXPECT_EQ(r.data.cube("data").info.units, "DN/s");
  EXPECT_EQ(r.data.cube("data").info.long_name, "rate");
  EXPECT_EQ(r.data.cube("var_poisson").info.units, "DN2/s2");
  EXPECT_EQ(r.data.cube("dq").type(), tessera::ElementType::UInt32);

  // Vectors: time stays the time (float64), the others with their integer flag.
  std::set<std::string> vectors;
  for (const auto& v : r.order.vectors) vectors.insert(v.info.name);
  EXPECT_EQ(vectors, (std::set<std::string>{"time", "int_mid_bjd", "integration"}));
  EXPECT_EQ(vector_of(r.order, "time").values, s.time);
  EXPECT_EQ(vector_of(r.order, "time").info.units, "d");
  EXPECT_EQ(vector_of(r.order, "time").info.long_name, "mid-integration time (MJD UTC)");
  EXPECT_FALSE(vector_of(r.order, "time").integer);
  EXPECT_EQ(vector_of(r.order, "int_mid_bjd").values, s.bjd);
  EXPECT_TRUE(vector_of(r.order, "integration").integer);
  EXPECT_EQ(vector_of(r.order, "integration").values, (std::vector<double>{11, 12, 13, 14, 15}));

  // Images with their dimension names; the wavelength coordinate as a coordinate image; the
  // index dimensions (bin, y, x, group) are not images.
  std::set<std::string> images;
  for (const auto& [name, image] : r.data.images()) images.insert(name);
  EXPECT_EQ(images, (std::set<std::string>{"badpix", "depth", "flux", "sensitivity", "wavelength", "white_f32"}));
  const auto& flux = r.data.images().at("flux");
  EXPECT_EQ(flux.dim_y, "time");
  EXPECT_EQ(flux.dim_x, "wavelength");
  EXPECT_EQ(flux.ny, kNt);
  EXPECT_EQ(flux.nx, kNw);
  EXPECT_TRUE(same_bits(flux.values, s.flux));
  EXPECT_EQ(flux.info.units, "DN/s");
  const auto& wavelength = r.data.images().at("wavelength");
  EXPECT_EQ(wavelength.dim_y, "");
  EXPECT_EQ(wavelength.dim_x, "wavelength");
  EXPECT_EQ(wavelength.ny, 1u);
  EXPECT_TRUE(same_bits(wavelength.values, s.wavelength));
  EXPECT_EQ(wavelength.info.units, "micron");
  const auto& sensitivity = r.data.images().at("sensitivity");
  EXPECT_EQ(sensitivity.dim_y, "");
  EXPECT_EQ(sensitivity.dim_x, "wavelength");
  EXPECT_TRUE(same_bits(sensitivity.values, s.sensitivity));
  EXPECT_EQ(r.data.images().at("depth").dim_x, "bin");
  EXPECT_TRUE(same_bits(r.data.images().at("depth").values, s.depth));
  const auto& badpix = r.data.images().at("badpix");
  EXPECT_EQ(badpix.dim_y, "y");
  EXPECT_EQ(badpix.dim_x, "x");
  EXPECT_TRUE(same_bits(badpix.values, s.badpix));
  const auto& white = r.data.images().at("white_f32");
  EXPECT_EQ(white.dim_y, "");
  EXPECT_EQ(white.dim_x, "time");
  EXPECT_TRUE(same_bits(white.values, s.white_f32));

  // Attributes: the data's, not the provenance.
  const std::map<std::string, tessera::AttrValue> expected = {{"instrument", std::string("NIRISS")},
                                                              {"tgroup", 5.494},
                                                              {"nints", std::int64_t{500}},
                                                              {"empty_text", std::string()}};
  EXPECT_EQ(r.data.attributes(), expected);
}

TEST(TesseraH5, SameFramesOnOneTwoAndThreeRanks) {
  TempDir dir;
  const std::string path = (dir.path() / "rateints.h5").string();
  write_sample(path);
  const RankRead whole = read_with<TesseraH5>(h5_params(path));
  for (int nranks : {2, 3, 7}) {
    std::vector<float> data;
    std::vector<std::uint32_t> dq;
    for (int rank = 0; rank < nranks; ++rank) {
      RankRead part = read_with<TesseraH5>(h5_params(path), nranks, rank);
      EXPECT_EQ(part.data.attributes(), whole.data.attributes());
      EXPECT_EQ(part.data.images().size(), whole.data.images().size());
      for (const auto& [name, image] : whole.data.images())
        EXPECT_TRUE(same_bits(part.data.images().at(name).values, image.values)) << name;
      const auto& d = std::get<std::vector<float>>(part.data.cube("data").values);
      const auto& q = std::get<std::vector<std::uint32_t>>(part.data.cube("dq").values);
      data.insert(data.end(), d.begin(), d.end());
      dq.insert(dq.end(), q.begin(), q.end());
    }
    EXPECT_TRUE(same_bits(data, std::get<std::vector<float>>(whole.data.cube("data").values))) << nranks;
    EXPECT_EQ(dq, std::get<std::vector<std::uint32_t>>(whole.data.cube("dq").values)) << nranks;
  }
}

TEST(TesseraH5, CubesParameterReadsGroupedCubesAndLeavesOthersOut) {
  TempDir dir;
  const std::string path = (dir.path() / "ramps.h5").string();
  write_sample(path);
  auto p = h5_params(path);
  p.cubes = {"ramp", "dq"};
  RankRead r = read_with<TesseraH5>(p);
  EXPECT_EQ(r.order.shape, (tessera::CubeShape{kNt, kNy, kNx, kNg}));
  ASSERT_EQ(r.data.cubes().size(), 2u);
  EXPECT_TRUE(r.data.cube("ramp").grouped);
  EXPECT_FALSE(r.data.cube("dq").grouped);
  EXPECT_TRUE(same_bits(std::get<std::vector<float>>(r.data.cube("ramp").values), sample_values().ramp));
  EXPECT_EQ(r.data.frames<float>("ramp").groups, kNg);
  EXPECT_EQ(r.data.cube("ramp").info.units, "DN");
  // The cubes not asked for are not images either.
  EXPECT_FALSE(r.data.images().count("data"));
}

TEST(TesseraH5, FramesParameterReadsPartOfTheVisit) {
  TempDir dir;
  const std::string path = (dir.path() / "rateints.h5").string();
  write_sample(path);
  const Sample s = sample_values();
  auto p = h5_params(path);
  p.frames = {1, 4};
  for (int nranks : {1, 2}) {
    std::vector<float> data;
    for (int rank = 0; rank < nranks; ++rank) {
      RankRead r = read_with<TesseraH5>(p, nranks, rank);
      EXPECT_EQ(r.order.shape.nt, 3u);
      EXPECT_EQ(vector_of(r.order, "time").values, (std::vector<double>{s.time[1], s.time[2], s.time[3]}));
      EXPECT_EQ(vector_of(r.order, "integration").values, (std::vector<double>{12, 13, 14}));
      const auto& flux = r.data.images().at("flux");
      EXPECT_EQ(flux.ny, 3u);
      EXPECT_TRUE(same_bits(flux.values, frames_of(s.flux, kNw, 1, 4)));
      EXPECT_TRUE(same_bits(r.data.images().at("white_f32").values, frames_of(s.white_f32, 1, 1, 4)));
      EXPECT_EQ(r.data.images().at("white_f32").nx, 3u);
      EXPECT_TRUE(same_bits(r.data.images().at("wavelength").values, s.wavelength));  // not per frame
      const auto& d = std::get<std::vector<float>>(r.data.cube("data").values);
      data.insert(data.end(), d.begin(), d.end());
    }
    EXPECT_TRUE(same_bits(data, frames_of(s.data, kNy * kNx, 1, 4))) << nranks;
  }
}

TEST(TesseraH5, ProvidesWhatTheFileHoldsOrADetector1RateFileBeforeItExists) {
  TempDir dir;
  const std::string path = (dir.path() / "rateints.h5").string();
  // Before the upstream workflow has run: the detector1 rate cubes and JWST vectors.
  {
    auto source = TesseraH5::open(h5_params(path));
    auto provided = by_name(source->provides());
    for (const char* name : {"data", "err", "dq", "var_poisson", "var_rnoise", "time", "integration"})
      EXPECT_TRUE(provided.count(name)) << name;
    EXPECT_EQ(provided["dq"].type, tessera::ElementType::UInt32);
  }
  write_sample(path);
  auto source = TesseraH5::open(h5_params(path));
  auto provided = by_name(source->provides());
  EXPECT_EQ(provided.size(), 4u + 3u + 6u);  // cubes, vectors, images
  EXPECT_EQ(provided["data"].kind, tessera::DataKind::Cube);
  EXPECT_EQ(provided["dq"].type, tessera::ElementType::UInt32);
  EXPECT_FALSE(provided.count("var_rnoise"));
  EXPECT_EQ(provided["integration"].kind, tessera::DataKind::FrameVector);
  EXPECT_TRUE(provided["integration"].integer);
  EXPECT_EQ(provided["flux"].kind, tessera::DataKind::Image);
  EXPECT_EQ(provided["flux"].dim_x, "wavelength");
  EXPECT_EQ(provided["flux"].image_ny, tessera::DataOut::frames);
  EXPECT_EQ(provided["wavelength"].dim_y, "");
}

TEST(TesseraH5, ProvenanceListMatchesWhatTheRunnerWrites) {
  // The runner's provenance keys (engine/src/runner.cpp), so that a new one is noticed here.
  const std::string runner = std::string(TESSERA_SOURCE_DIR) + "/engine/src/runner.cpp";
  std::ifstream in(runner);
  ASSERT_TRUE(in) << runner;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& name : TesseraH5::provenance_attributes())
    EXPECT_TRUE(contains(text, "\"" + name + "\"")) << name << " is no longer written by the runner";
  for (const auto& name : TesseraH5::engine_vectors())
    EXPECT_TRUE(contains(text, "{\"" + name + "\"")) << name << " is no longer written by the runner";
  // Every {"key", ...} of the provenance map and every provenance["key"] is in the list.
  const std::size_t from = text.find("std::map<std::string, AttrValue> provenance");
  ASSERT_NE(from, std::string::npos);
  const std::size_t to = text.find("write_dataset_hdf5", from);
  const std::string region = text.substr(from, to - from);
  const auto& list = TesseraH5::provenance_attributes();
  const std::regex key(R"re([\{\[]"([a-z_.]+)")re");
  std::size_t keys = 0;
  for (auto it = std::sregex_iterator(region.begin(), region.end(), key); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    ++keys;
    if (name == "step.") continue;  // step.<id>: left out by prefix
    EXPECT_NE(std::find(list.begin(), list.end(), name), list.end()) << "provenance key '" << name << "' not listed";
  }
  EXPECT_GE(keys, list.size());
}

// --- tessera_h5: bad files --------------------------------------------------------------------

TEST(TesseraH5Errors, MissingFileNotHdf5AndNotTessera) {
  TempDir dir;
  const std::string missing = (dir.path() / "nope.h5").string();
  std::string message = input_error([&] { read_with<TesseraH5>(h5_params(missing)); });
  EXPECT_TRUE(contains(message, missing)) << message;
  EXPECT_TRUE(contains(message, "no such file")) << message;

  const std::string text = (dir.path() / "notes.h5").string();
  std::ofstream(text) << "not HDF5\n";
  message = input_error([&] { read_with<TesseraH5>(h5_params(text)); });
  EXPECT_TRUE(contains(message, text)) << message;
  EXPECT_TRUE(contains(message, "not an HDF5 file")) << message;

  const std::string other = (dir.path() / "other.h5").string();
  write_sample(other, true, false);  // no y, x dimensions
  message = input_error([&] { read_with<TesseraH5>(h5_params(other)); });
  EXPECT_TRUE(contains(message, other)) << message;
  EXPECT_TRUE(contains(message, "not a Tessera output file")) << message;
  EXPECT_TRUE(contains(message, "'y'")) << message;

  message = input_error([&] { read_with<TesseraH5>(h5_params(dir.str())); });
  EXPECT_TRUE(contains(message, "not a file")) << message;
}

TEST(TesseraH5Errors, NoDataCube) {
  TempDir dir;
  const std::string path = (dir.path() / "nodata.h5").string();
  write_sample(path, false);
  const std::string message = input_error([&] { read_with<TesseraH5>(h5_params(path)); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "no 'data' cube")) << message;
  EXPECT_TRUE(contains(message, "cubes")) << message;
  // Named cubes need no data.
  auto p = h5_params(path);
  p.cubes = {"err"};
  EXPECT_EQ(read_with<TesseraH5>(p).data.cubes().size(), 1u);
}

TEST(TesseraH5Errors, ListedCubeMissingOrNotACube) {
  TempDir dir;
  const std::string path = (dir.path() / "rateints.h5").string();
  write_sample(path);
  auto p = h5_params(path);
  p.cubes = {"data", "var_rnoise"};
  std::string message = input_error([&] { read_with<TesseraH5>(p); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "no variable 'var_rnoise'")) << message;
  EXPECT_TRUE(contains(message, "cubes")) << message;
  p.cubes = {"flux"};
  message = input_error([&] { read_with<TesseraH5>(p); });
  EXPECT_TRUE(contains(message, "'flux' is over (time, wavelength)")) << message;
  p.cubes = {"data64"};
  message = input_error([&] { read_with<TesseraH5>(p); });
  EXPECT_TRUE(contains(message, "'data64' is float64")) << message;
  p.cubes = {"data", "data"};
  message = input_error([&] { read_with<TesseraH5>(p); });
  EXPECT_TRUE(contains(message, "listed twice")) << message;
}

TEST(TesseraH5Errors, FramesOutOfRangeOrMalformed) {
  TempDir dir;
  const std::string path = (dir.path() / "rateints.h5").string();
  write_sample(path);
  auto p = h5_params(path);
  p.frames = {3, 9};
  std::string message = input_error([&] { read_with<TesseraH5>(p); });
  EXPECT_TRUE(contains(message, "frames = [3, 9)")) << message;
  EXPECT_TRUE(contains(message, "5 frames")) << message;
  p.frames = {3, 3};
  EXPECT_TRUE(contains(input_error([&] { read_with<TesseraH5>(p); }), "non-empty"));
  p.frames = {1, 2, 3};
  try {
    TesseraH5::open(p);
    ADD_FAILURE() << "no ConfigError";
  } catch (const tessera::ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), "[input] frames")) << e.what();
  }
}

// --- jwst_rateints ----------------------------------------------------------------------------

/// One rateints segment. SCI(n, y, x) = n + y/10 + x/1000 + 1/3 for exposure integration n.
struct Seg {
  long long exsegnum = 1, exsegtot = 2, intstart = 1, intend = 3, nints = 6;
  std::size_t ny = 3, nx = 4;
  bool variances = true, int_times = true, dq_3d = true, keywords = true;
  std::string bunit = "DN/s";
  long sci_naxis = 3;
};

float rate(long long n, std::size_t y, std::size_t x) {
  return static_cast<float>(n) + static_cast<float>(y) / 10.0f + static_cast<float>(x) / 1000.0f + 1.0f / 3.0f;
}
/// DQ with bits above 2^24 (a float would lose the low ones).
std::uint32_t dq_bits(long long n, std::size_t y, std::size_t x) {
  return 0x80000000u | (static_cast<std::uint32_t>(n) << 20) | static_cast<std::uint32_t>(y * 16 + x) | 1u;
}
double mid_time(long long n) { return 60200.0 + 0.002 * static_cast<double>(n); }

void write_rateints(const fs::path& path, const Seg& s) {
  fs::create_directories(path.parent_path());
  auto file = tessera::fits::File::create(path.string());
  file.write_key("TELESCOP", std::string("JWST"), "");
  file.write_key("INSTRUME", std::string("NIRISS"), "");
  file.write_key("DETECTOR", std::string("NIS"), "");
  file.write_key("EXP_TYPE", std::string("NIS_SOSS"), "");
  file.write_key("READPATT", std::string("NISRAPID"), "");
  file.write_key("SUBARRAY", std::string("SUBSTRIP256"), "");
  file.write_key("NINTS", static_cast<int>(s.nints), "");
  file.write_key("NGROUPS", 9, "");
  file.write_key("NFRAMES", 1, "");
  file.write_key("GROUPGAP", 0, "");
  file.write_key("TFRAME", 5.494, "s");
  file.write_key("TGROUP", 5.494, "s");
  if (s.keywords) {
    file.write_key("EXSEGNUM", static_cast<int>(s.exsegnum), "");
    file.write_key("EXSEGTOT", static_cast<int>(s.exsegtot), "");
    file.write_key("INTSTART", static_cast<int>(s.intstart), "");
    file.write_key("INTEND", static_cast<int>(s.intend), "");
  }
  file.write_key("SUBSTRT1", 1, "");
  file.write_key("SUBSTRT2", 1793, "");
  file.write_key("EXPSTART", 60200.0, "MJD");
  std::vector<float> sci, err, vp, vr;
  std::vector<std::uint32_t> dq;
  for (long long n = s.intstart; n <= s.intend; ++n)
    for (std::size_t y = 0; y < s.ny; ++y)
      for (std::size_t x = 0; x < s.nx; ++x) {
        sci.push_back(rate(n, y, x));
        err.push_back(rate(n, y, x) / 100.0f);
        vp.push_back(rate(n, y, x) / 1e4f);
        vr.push_back(1.0f / 7.0f + static_cast<float>(x));
        dq.push_back(dq_bits(n, y, x));
      }
  const long nint = static_cast<long>(s.intend - s.intstart + 1);
  const std::vector<long> axes =
      s.sci_naxis == 3 ? std::vector<long>{static_cast<long>(s.nx), static_cast<long>(s.ny), nint}
                       : std::vector<long>{static_cast<long>(s.nx), static_cast<long>(s.ny)};
  if (s.sci_naxis == 2) {  // a *_rate.fits: one 2D image
    sci.resize(s.nx * s.ny);
    file.append_image_float("SCI", sci, axes);
    file.close();
    return;
  }
  file.append_image_float("SCI", sci, axes);
  if (!s.bunit.empty()) file.write_key("BUNIT", s.bunit, "");
  file.append_image_float("ERR", err, axes);
  if (!s.bunit.empty()) file.write_key("BUNIT", s.bunit, "");
  if (s.dq_3d) {
    file.append_image_uint32("DQ", dq, axes);
  } else {
    std::vector<std::uint32_t> flat(s.ny * s.nx);
    for (std::size_t i = 0; i < flat.size(); ++i) flat[i] = 0x40000000u | static_cast<std::uint32_t>(i);
    file.append_image_uint32("DQ", flat, {static_cast<long>(s.nx), static_cast<long>(s.ny)});
  }
  if (s.variances) {
    file.append_image_float("VAR_POISSON", vp, axes);
    file.write_key("BUNIT", std::string("DN^2/s^2"), "");
    file.append_image_float("VAR_RNOISE", vr, axes);  // no BUNIT: the square of SCI's
  }
  if (s.int_times) {
    std::vector<double> number, start, mid, end, bjd;
    for (long long n = s.intstart; n <= s.intend; ++n) {
      number.push_back(static_cast<double>(n));
      start.push_back(mid_time(n) - 0.0009);
      mid.push_back(mid_time(n));
      end.push_back(mid_time(n) + 0.0009);
      bjd.push_back(mid_time(n) + 0.0007);
    }
    file.append_table("INT_TIMES", {{"integration_number", number},
                                    {"int_start_MJD_UTC", start},
                                    {"int_mid_MJD_UTC", mid},
                                    {"int_end_MJD_UTC", end},
                                    {"int_start_BJD_TDB", bjd},
                                    {"int_mid_BJD_TDB", bjd},
                                    {"int_end_BJD_TDB", bjd}});
  }
  file.close();
}

std::string seg_name(long long k) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "jw01366004001_04101_00001-seg%03lld_nis_rateints.fits", k);
  return buffer;
}

void write_exposure(const fs::path& dir, long long segments, long long ints_each, Seg base = {}) {
  base.nints = segments * ints_each;
  base.exsegtot = segments;
  for (long long k = 1; k <= segments; ++k) {
    Seg s = base;
    s.exsegnum = k;
    s.intstart = (k - 1) * ints_each + 1;
    s.intend = k * ints_each;
    write_rateints(dir / seg_name(k), s);
  }
}

tessera::JwstRateintsParams rate_params(const std::string& path) {
  tessera::JwstRateintsParams p;
  p.path = path;
  return p;
}

TEST(JwstRateints, SchemaDocumentsEveryParameter) {
  const auto docs = tessera::JwstRateintsParams::schema().docs();
  ASSERT_EQ(docs.size(), 3u);
  for (const auto& d : docs) EXPECT_FALSE(d.doc.empty()) << d.name;
  EXPECT_EQ(docs[0].name, "path");
}

TEST(JwstRateints, OpenTouchesNothingAndProvidesRateCubesAndTimes) {
  auto source = JwstRateints::open(rate_params("/nonexistent/rateints"));
  auto provided = by_name(source->provides());
  for (const char* name : {"data", "err", "dq", "var_poisson", "var_rnoise", "time", "int_start", "int_end",
                           "int_mid_bjd", "integration", "segment"})
    EXPECT_TRUE(provided.count(name)) << name;
  EXPECT_EQ(provided["dq"].type, tessera::ElementType::UInt32);
  EXPECT_FALSE(provided["data"].grouped);
  EXPECT_TRUE(provided["segment"].integer);
}

TEST(JwstRateints, TwoSegmentsReadAsOneSeriesBitForBit) {
  TempDir dir;
  // Names sort the other way round from EXSEGNUM: the order comes from the headers.
  Seg a;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6;
  write_rateints(dir.path() / "z_seg001_nis_rateints.fits", a);
  write_rateints(dir.path() / "a_seg002_nis_rateints.fits", b);
  write_rateints(dir.path() / "a_seg002_nis_rate.fits", a);  // not a rateints file: ignored

  RankRead r = read_with<JwstRateints>(rate_params(dir.str()));
  EXPECT_EQ(r.order.shape, (tessera::CubeShape{6, 3, 4, 1}));
  EXPECT_EQ(r.order.units, (std::vector<std::size_t>{1, 1, 1, 0, 0, 0}));
  auto data = r.data.frames<float>("data");
  auto err = r.data.frames<float>("err");
  auto vp = r.data.frames<float>("var_poisson");
  auto vr = r.data.frames<float>("var_rnoise");
  auto dq = r.data.frames<std::uint32_t>("dq");
  for (std::size_t t = 0; t < 6; ++t)
    for (std::size_t y = 0; y < 3; ++y)
      for (std::size_t x = 0; x < 4; ++x) {
        const long long n = static_cast<long long>(t) + 1;
        ASSERT_EQ(data(t, y, x), rate(n, y, x)) << t << " " << y << " " << x;
        ASSERT_EQ(err(t, y, x), rate(n, y, x) / 100.0f);
        ASSERT_EQ(vp(t, y, x), rate(n, y, x) / 1e4f);
        ASSERT_EQ(vr(t, y, x), 1.0f / 7.0f + static_cast<float>(x));
        ASSERT_EQ(dq(t, y, x), dq_bits(n, y, x));
      }
  EXPECT_EQ(r.data.cube("data").info.units, "DN/s");
  EXPECT_EQ(r.data.cube("err").info.units, "DN/s");
  EXPECT_EQ(r.data.cube("var_poisson").info.units, "DN^2/s^2");  // its BUNIT
  EXPECT_EQ(r.data.cube("var_rnoise").info.units, "DN2/s2");      // none: SCI's squared

  for (std::size_t t = 0; t < 6; ++t) {
    const long long n = static_cast<long long>(t) + 1;
    EXPECT_DOUBLE_EQ(vector_of(r.order, "time").values[t], mid_time(n));
    EXPECT_DOUBLE_EQ(vector_of(r.order, "int_start").values[t], mid_time(n) - 0.0009);
    EXPECT_DOUBLE_EQ(vector_of(r.order, "int_mid_bjd").values[t], mid_time(n) + 0.0007);
    EXPECT_EQ(vector_of(r.order, "integration").values[t], static_cast<double>(n));
    EXPECT_EQ(vector_of(r.order, "segment").values[t], t < 3 ? 1.0 : 2.0);
  }
  const auto& attrs = r.data.attributes();
  EXPECT_EQ(std::get<std::string>(attrs.at("instrument")), "NIRISS");
  EXPECT_EQ(std::get<std::string>(attrs.at("exp_type")), "NIS_SOSS");
  EXPECT_EQ(std::get<std::int64_t>(attrs.at("ngroups")), 9);  // the NGROUPS keyword
  EXPECT_EQ(std::get<std::int64_t>(attrs.at("nints")), 6);
  EXPECT_EQ(std::get<std::int64_t>(attrs.at("substrt2")), 1793);
  EXPECT_DOUBLE_EQ(std::get<double>(attrs.at("tgroup")), 5.494);
  EXPECT_EQ(std::get<std::string>(attrs.at("segment_files")), "z_seg001_nis_rateints.fits,a_seg002_nis_rateints.fits");
}

TEST(JwstRateints, SameOnOneTwoAndThreeRanks) {
  TempDir dir;
  write_exposure(dir.path(), 3, 3);
  const auto p = rate_params(dir.str());
  const RankRead whole = read_with<JwstRateints>(p);
  for (int nranks : {2, 3, 4}) {
    std::vector<float> data;
    std::vector<std::uint32_t> dq;
    for (int rank = 0; rank < nranks; ++rank) {
      RankRead part = read_with<JwstRateints>(p, nranks, rank);
      EXPECT_EQ(part.data.attributes(), whole.data.attributes());
      const auto& d = std::get<std::vector<float>>(part.data.cube("data").values);
      const auto& q = std::get<std::vector<std::uint32_t>>(part.data.cube("dq").values);
      data.insert(data.end(), d.begin(), d.end());
      dq.insert(dq.end(), q.begin(), q.end());
    }
    EXPECT_EQ(data, std::get<std::vector<float>>(whole.data.cube("data").values)) << nranks;
    EXPECT_EQ(dq, std::get<std::vector<std::uint32_t>>(whole.data.cube("dq").values)) << nranks;
  }
}

TEST(JwstRateints, VariancesOnlyWhenEverySegmentHasThemAndAFlatDqRepeats) {
  TempDir dir;
  Seg a;
  a.dq_3d = false;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6, b.variances = false;
  write_rateints(dir.path() / seg_name(1), a);
  write_rateints(dir.path() / seg_name(2), b);
  RankRead r = read_with<JwstRateints>(rate_params(dir.str()));
  std::set<std::string> cubes;
  for (const auto& [name, cube] : r.data.cubes()) cubes.insert(name);
  EXPECT_EQ(cubes, (std::set<std::string>{"data", "dq", "err"}));
  auto dq = r.data.frames<std::uint32_t>("dq");
  for (std::size_t t = 0; t < 6; ++t)
    for (std::size_t i = 0; i < 12; ++i) ASSERT_EQ(dq.frame(t)[i], 0x40000000u | static_cast<std::uint32_t>(i));
}

TEST(JwstRateints, UnitsFromBunitOrDnPerSecond) {
  TempDir dir;
  Seg s;
  s.nints = 3, s.exsegtot = 1, s.bunit = "MJy/sr";
  write_rateints(dir.path() / seg_name(1), s);
  RankRead r = read_with<JwstRateints>(rate_params(dir.str()));
  EXPECT_EQ(r.data.cube("data").info.units, "MJy/sr");
  EXPECT_EQ(r.data.cube("var_rnoise").info.units, "(MJy/sr)2");
  TempDir bare;
  s.bunit = "";
  write_rateints(bare.path() / seg_name(1), s);
  EXPECT_EQ(read_with<JwstRateints>(rate_params(bare.str())).data.cube("data").info.units, "DN/s");
}

// --- jwst_rateints: bad input -------------------------------------------------------------------

TEST(JwstRateintsErrors, GapBetweenSegments) {
  TempDir dir;
  Seg a;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 5, b.intend = 6;
  write_rateints(dir.path() / seg_name(1), a);
  write_rateints(dir.path() / seg_name(2), b);
  const std::string message = input_error([&] { read_with<JwstRateints>(rate_params(dir.str())); });
  EXPECT_TRUE(contains(message, "integrations 4..4 are missing")) << message;
  EXPECT_TRUE(contains(message, seg_name(1))) << message;
  EXPECT_TRUE(contains(message, seg_name(2))) << message;
}

TEST(JwstRateintsErrors, MissingSegmentAndOverlap) {
  TempDir dir;
  write_exposure(dir.path(), 3, 2);
  fs::remove(dir.path() / seg_name(2));
  std::string message = input_error([&] { read_with<JwstRateints>(rate_params(dir.str())); });
  EXPECT_TRUE(contains(message, "segment 2 of the exposure is missing")) << message;
  TempDir other;
  Seg a;
  a.intend = 4;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6;
  write_rateints(other.path() / seg_name(1), a);
  write_rateints(other.path() / seg_name(2), b);
  message = input_error([&] { read_with<JwstRateints>(rate_params(other.str())); });
  EXPECT_TRUE(contains(message, "overlap")) << message;
}

TEST(JwstRateintsErrors, ShapesDisagree) {
  TempDir dir;
  Seg a;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6, b.nx = 5;
  write_rateints(dir.path() / seg_name(1), a);
  write_rateints(dir.path() / seg_name(2), b);
  std::string message = input_error([&] { read_with<JwstRateints>(rate_params(dir.str())); });
  EXPECT_TRUE(contains(message, "3 x 5")) << message;
  EXPECT_TRUE(contains(message, "3 x 4")) << message;

  // ERR not the shape of SCI.
  TempDir bad;
  const fs::path path = bad.path() / seg_name(1);
  {
    auto file = tessera::fits::File::create(path.string());
    file.append_image_float("SCI", std::vector<float>(24, 1.0f), {4, 3, 2});
    file.append_image_float("ERR", std::vector<float>(12, 1.0f), {4, 3, 1});
    file.append_image_uint32("DQ", std::vector<std::uint32_t>(24, 0), {4, 3, 2});
    file.close();
  }
  message = input_error([&] { read_with<JwstRateints>(rate_params(path.string())); });
  EXPECT_TRUE(contains(message, path.string())) << message;
  EXPECT_TRUE(contains(message, "ERR is 4 x 3 x 1 but SCI is 4 x 3 x 2")) << message;
}

TEST(JwstRateintsErrors, RateFileTruncatedFileAndNoFiles) {
  TempDir dir;
  Seg s;
  s.nints = 3, s.exsegtot = 1, s.sci_naxis = 2;
  const fs::path rate = dir.path() / "x_rate" / seg_name(1);
  write_rateints(rate, s);
  std::string message = input_error([&] { read_with<JwstRateints>(rate_params(rate.string())); });
  EXPECT_TRUE(contains(message, "SCI has 2 axes; expected 3")) << message;
  EXPECT_TRUE(contains(message, "_rate.fits")) << message;

  // Cut inside the last extension's data (INT_TIMES follows; cut before it ends the variances).
  Seg big;
  big.nints = 4, big.exsegtot = 1, big.intend = 4, big.ny = 40, big.nx = 50, big.int_times = false;
  const fs::path path = dir.path() / "cut" / seg_name(1);
  write_rateints(path, big);
  fs::resize_file(path, fs::file_size(path) - 3 * 8000 - 2880);
  message = input_error([&] { read_with<JwstRateints>(rate_params(path.string())); });
  EXPECT_TRUE(contains(message, path.string())) << message;
  EXPECT_TRUE(contains(message, "truncated")) << message;
  EXPECT_TRUE(contains(message, "VAR_RNOISE")) << message;

  TempDir empty;
  message = input_error([&] { read_with<JwstRateints>(rate_params(empty.str())); });
  EXPECT_TRUE(contains(message, "no *_rateints.fits files")) << message;
}

// --- whole runs: chaining workflows -----------------------------------------------------------

fs::path tessera_binary() {
  std::error_code ec;
  const fs::path tessera = fs::read_symlink("/proc/self/exe", ec).parent_path() / "tessera";
  return ec ? fs::path() : tessera;
}

std::string workflow_text(const std::string& kind, const std::string& input, const std::string& output) {
  return "[workflow]\nname = \"chain\"\n\n[input]\nkind = \"" + kind + "\"\npath = \"" + input +
         "\"\n\n[output]\npath = \"" + output + "\"\n";
}

/// Every variable of `a` is in `b` with the same dims, units, long name and bits, and the
/// root attributes other than provenance agree.
void expect_same_file(const std::string& a_path, const std::string& b_path) {
  const auto a = tessera::h5::File::open(a_path);
  const auto b = tessera::h5::File::open(b_path);
  std::map<std::string, tessera::h5::Variable> bv;
  for (const auto& v : b.variables()) bv[v.name] = v;
  const auto av = a.variables();
  EXPECT_EQ(av.size(), bv.size());
  for (const auto& v : av) {
    ASSERT_TRUE(bv.count(v.name)) << v.name << " missing from " << b_path;
    const auto& w = bv.at(v.name);
    EXPECT_EQ(v.dims, w.dims) << v.name;
    EXPECT_EQ(v.shape, w.shape) << v.name;
    EXPECT_EQ(v.type, w.type) << v.name;
    EXPECT_EQ(a.read_string_attribute(v.name, "units"), b.read_string_attribute(v.name, "units")) << v.name;
    EXPECT_EQ(a.read_string_attribute(v.name, "long_name"), b.read_string_attribute(v.name, "long_name")) << v.name;
    if (v.type == tessera::h5::StoredType::UInt32) {
      EXPECT_EQ(a.read_uints(v.name), b.read_uints(v.name)) << v.name;
    } else if (v.type == tessera::h5::StoredType::Float32) {
      EXPECT_TRUE(same_bits(a.read_floats(v.name), b.read_floats(v.name))) << v.name;
    } else {
      EXPECT_EQ(a.read_doubles(v.name), b.read_doubles(v.name)) << v.name;
    }
  }
  auto data_attributes = [](const tessera::h5::File& f) {
    auto attrs = f.attributes();
    for (auto it = attrs.begin(); it != attrs.end();) {
      const auto& list = TesseraH5::provenance_attributes();
      const bool provenance = it->first.starts_with("step.") ||
                              std::find(list.begin(), list.end(), it->first) != list.end();
      it = provenance ? attrs.erase(it) : std::next(it);
    }
    return attrs;
  };
  EXPECT_EQ(data_attributes(a), data_attributes(b));
}

TEST(SpectraInputsRun, RateintsThenTesseraH5OnOneAndTwoRanks) {
  const fs::path tessera = tessera_binary();
  if (tessera.empty() || !fs::exists(tessera)) GTEST_SKIP() << "no tessera binary next to this test";
  TempDir dir;
  write_exposure(dir.path() / "rateints", 2, 3);
  const fs::path first = dir.path() / "first.toml", out1 = dir.path() / "out1.h5";
  std::ofstream(first) << workflow_text("jwst_rateints", (dir.path() / "rateints").string(), out1.string());
  auto [status, output] = tessera::testing::run_command(tessera.string() + " run " + first.string());
  ASSERT_EQ(status, 0) << output;

  // What the first run wrote reads back with exactly the attributes the rateints input set.
  const RankRead direct = read_with<JwstRateints>(rate_params((dir.path() / "rateints").string()));
  const RankRead chained = read_with<TesseraH5>(h5_params(out1.string()));
  EXPECT_EQ(chained.data.attributes(), direct.data.attributes());
  for (const char* cube : {"data", "err", "var_poisson", "var_rnoise"})
    EXPECT_TRUE(same_bits(std::get<std::vector<float>>(chained.data.cube(cube).values),
                          std::get<std::vector<float>>(direct.data.cube(cube).values)))
        << cube;
  EXPECT_EQ(std::get<std::vector<std::uint32_t>>(chained.data.cube("dq").values),
            std::get<std::vector<std::uint32_t>>(direct.data.cube("dq").values));
  for (const auto& v : direct.order.vectors) {
    EXPECT_EQ(vector_of(chained.order, v.info.name).values, v.values) << v.info.name;
    EXPECT_EQ(vector_of(chained.order, v.info.name).integer, v.integer) << v.info.name;
    EXPECT_EQ(vector_of(chained.order, v.info.name).info.units, v.info.units) << v.info.name;
  }

  // Chained runs re-write the same file, on one rank and on two.
  const fs::path second = dir.path() / "second.toml", out2 = dir.path() / "out2.h5";
  std::ofstream(second) << workflow_text("tessera_h5", out1.string(), out2.string());
  std::tie(status, output) = tessera::testing::run_command(tessera.string() + " run " + second.string());
  ASSERT_EQ(status, 0) << output;
  expect_same_file(out1.string(), out2.string());
  EXPECT_EQ(std::get<std::string>(tessera::h5::File::open(out2.string()).read_attribute("input_kind")), "tessera_h5");

  const auto [has_mpirun, where] = tessera::testing::run_command("command -v mpirun");
  if (has_mpirun != 0) GTEST_SKIP() << "no mpirun: the 2-rank chained run is left out";
  const fs::path third = dir.path() / "third.toml", out3 = dir.path() / "out3.h5";
  std::ofstream(third) << workflow_text("tessera_h5", out2.string(), out3.string());
  std::tie(status, output) = tessera::testing::run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -n 2 --oversubscribe " + tessera.string() +
      " run " + third.string());
  ASSERT_EQ(status, 0) << output;
  expect_same_file(out1.string(), out3.string());
}

TEST(SpectraInputsRun, TesseraH5RewritesImagesCoordinatesAndAttributes) {
  const fs::path tessera = tessera_binary();
  if (tessera.empty() || !fs::exists(tessera)) GTEST_SKIP() << "no tessera binary next to this test";
  TempDir dir;
  const std::string in = (dir.path() / "in.h5").string(), out = (dir.path() / "out.h5").string();
  write_sample(in);
  const fs::path wf = dir.path() / "read.toml";
  std::ofstream(wf) << "[workflow]\nname = \"read\"\n\n[input]\nkind = \"tessera_h5\"\npath = \"" << in
                    << "\"\ncubes = [\"data\", \"dq\", \"err\", \"var_poisson\", \"ramp\"]\n\n[output]\npath = \""
                    << out << "\"\n";
  const auto [status, output] = tessera::testing::run_command(tessera.string() + " run " + wf.string());
  ASSERT_EQ(status, 0) << output;
  // Everything but the float64 variable that is neither a cube nor an image comes back.
  const auto a = tessera::h5::File::open(in);
  const auto b = tessera::h5::File::open(out);
  for (const auto& v : a.variables()) {
    if (v.name == "data64") {
      EXPECT_FALSE(b.has(v.name));
      continue;
    }
    if (v.name == "nonfinite_input") {  // this run's own count: the NaN and the infinity in data
      EXPECT_EQ(b.read_ints(v.name), (std::vector<std::int64_t>{2, 0, 0, 0, 0}));
      continue;
    }
    ASSERT_TRUE(b.has(v.name)) << v.name;
    const auto w = b.variable(v.name);
    EXPECT_EQ(w.dims, v.dims) << v.name;
    EXPECT_EQ(w.is_dimension, v.is_dimension) << v.name;
    EXPECT_EQ(b.read_string_attribute(v.name, "units"), a.read_string_attribute(v.name, "units")) << v.name;
    if (v.type == tessera::h5::StoredType::Float32)
      EXPECT_TRUE(same_bits(a.read_floats(v.name), b.read_floats(v.name))) << v.name;
    else
      EXPECT_EQ(a.read_doubles(v.name), b.read_doubles(v.name)) << v.name;
  }
  const auto attrs = b.attributes();
  EXPECT_EQ(std::get<std::string>(attrs.at("instrument")), "NIRISS");
  EXPECT_EQ(std::get<std::int64_t>(attrs.at("nints")), 500);
  EXPECT_FALSE(attrs.count("step.ramp_fit"));  // the upstream run's step, not this one's
  EXPECT_NE(std::get<std::string>(attrs.at("workflow_toml")), "[workflow]\nname = 'x'\n");
  EXPECT_EQ(std::get<std::int64_t>(attrs.at("mpi_ranks")), 1);
}

// --- speed (printed, not asserted) -----------------------------------------------------------

TEST(SpectraInputsSpeed, DISABLED_TesseraH5ReadThroughput) {
  TempDir dir;
  const std::string path = (dir.path() / "big.h5").string();
  constexpr std::size_t nt = 40, ny = 256, nx = 512;
  {
    auto file = tessera::h5::File::create(path);
    std::vector<double> time(nt);
    for (std::size_t t = 0; t < nt; ++t) time[t] = static_cast<double>(t);
    file.write_vector("time", time, "time", {"time", "d", "time"});
    std::vector<float> data(nt * ny * nx);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 977);
    file.write_array("data", data, {"time", "y", "x"}, {nt, ny, nx}, {"data", "DN/s", "rate"});
    file.write_array("err", data, {"time", "y", "x"}, {nt, ny, nx}, {"err", "DN/s", "error"});
    file.write_array("dq", std::vector<std::uint32_t>(nt * ny * nx, 4u), {"time", "y", "x"}, {nt, ny, nx},
                     {"dq", "1", "dq"});
  }
  auto source = TesseraH5::open(h5_params(path));
  const auto start = std::chrono::steady_clock::now();
  RankRead r = read_rank(*source);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double mb = 3.0 * 4.0 * nt * ny * nx / 1e6;
  std::printf("tessera_h5: %.1f MB (3 cubes, page cache) in %.3f s = %.0f MB/s\n", mb, seconds, mb / seconds);
  EXPECT_EQ(r.data.frames<float>("data")(39, 255, 511), static_cast<float>(((39 * ny + 255) * nx + 511) % 977));
}

}  // namespace
