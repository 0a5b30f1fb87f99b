// jwst_uncal over small uncal segments written here with tessera::fits::File: order, values
// (BZERO), time vectors, attributes, reads split over emulated ranks, a whole run through the
// `tessera` command, and one test per kind of bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "steps/inputs/jwst_uncal.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace {

namespace fs = std::filesystem;
using tessera::JwstUncal;

static_assert(tessera::InputKind<JwstUncal>);

class TempDir : public tessera::testing::TempDir {
 public:
  TempDir() : tessera::testing::TempDir("jwst_uncal") {}
};

/// One segment to write. SCI(n, g, y, x) = 30000 + 1000 n + 100 g + 10 y + x for exposure
/// integration n (1-based): above 32767 from n = 3 on, so BZERO 32768 matters.
struct Seg {
  long long exsegnum = 1, exsegtot = 2, intstart = 1, intend = 3, nints = 6;
  std::size_t ny = 3, nx = 4, ng = 2;
  std::string readpatt = "NISRAPID", subarray = "SUBSTRIP256";
  double tgroup = 5.494;
  bool int_times = true;       // write an INT_TIMES table
  bool whole_table = false;    // the table covers all NINTS integrations, not just this segment's
  bool bjd = true;             // with the BJD_TDB columns
  bool keywords = true;        // INTSTART/INTEND/EXSEGNUM present
};

std::uint16_t sci_value(long long n, std::size_t g, std::size_t y, std::size_t x) {
  return static_cast<std::uint16_t>(30000 + 1000 * n + 100 * static_cast<long long>(g) + 10 * static_cast<long long>(y) +
                                    static_cast<long long>(x));
}
double mid_time(long long n) { return 60100.0 + 0.001 * static_cast<double>(n); }

void write_segment(const fs::path& path, const Seg& s) {
  fs::create_directories(path.parent_path());
  auto file = tessera::fits::File::create(path.string());
  file.write_key("TELESCOP", std::string("JWST"), "");
  file.write_key("INSTRUME", std::string("NIRISS"), "");
  file.write_key("DETECTOR", std::string("NIS"), "");
  file.write_key("EXP_TYPE", std::string("NIS_SOSS"), "");
  file.write_key("READPATT", s.readpatt, "");
  file.write_key("SUBARRAY", s.subarray, "");
  file.write_key("NINTS", static_cast<int>(s.nints), "");
  file.write_key("NGROUPS", static_cast<int>(s.ng), "");
  file.write_key("NFRAMES", 1, "");
  file.write_key("GROUPGAP", 0, "");
  file.write_key("TFRAME", s.tgroup, "s");
  file.write_key("TGROUP", s.tgroup, "s");
  if (s.keywords) {
    file.write_key("EXSEGNUM", static_cast<int>(s.exsegnum), "");
    file.write_key("EXSEGTOT", static_cast<int>(s.exsegtot), "");
    file.write_key("INTSTART", static_cast<int>(s.intstart), "");
    file.write_key("INTEND", static_cast<int>(s.intend), "");
  }
  file.write_key("SUBSTRT1", 1, "");
  file.write_key("SUBSTRT2", 1793, "");
  file.write_key("EXPSTART", 60100.0, "MJD");
  std::vector<std::uint16_t> sci;
  for (long long n = s.intstart; n <= s.intend; ++n)
    for (std::size_t g = 0; g < s.ng; ++g)
      for (std::size_t y = 0; y < s.ny; ++y)
        for (std::size_t x = 0; x < s.nx; ++x) sci.push_back(sci_value(n, g, y, x));
  file.append_image_uint16("SCI", sci,
                           {static_cast<long>(s.nx), static_cast<long>(s.ny), static_cast<long>(s.ng),
                            static_cast<long>(s.intend - s.intstart + 1)});
  if (s.int_times) {
    std::vector<double> number, start, mid, end, bjd;
    const long long first = s.whole_table ? 1 : s.intstart, last = s.whole_table ? s.nints : s.intend;
    for (long long n = first; n <= last; ++n) {
      number.push_back(static_cast<double>(n));
      start.push_back(mid_time(n) - 0.0004);
      mid.push_back(mid_time(n));
      end.push_back(mid_time(n) + 0.0004);
      bjd.push_back(mid_time(n) + 0.0008);
    }
    std::vector<std::pair<std::string, std::vector<double>>> columns = {
        {"integration_number", number}, {"int_start_MJD_UTC", start}, {"int_mid_MJD_UTC", mid}, {"int_end_MJD_UTC", end}};
    if (s.bjd) {
      columns.push_back({"int_start_BJD_TDB", bjd});
      columns.push_back({"int_mid_BJD_TDB", bjd});
      columns.push_back({"int_end_BJD_TDB", bjd});
    }
    file.append_table("INT_TIMES", columns);
  }
  file.close();
}

std::string seg_name(long long k) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "jw01366004001_04101_00001-seg%03lld_nis_uncal.fits", k);
  return buffer;
}

/// Writes segments 1..n of `ints_each` integrations into dir.
void write_exposure(const TempDir& dir, long long segments, long long ints_each, Seg base = {}) {
  base.nints = segments * ints_each;
  base.exsegtot = segments;
  for (long long k = 1; k <= segments; ++k) {
    Seg s = base;
    s.exsegnum = k;
    s.intstart = (k - 1) * ints_each + 1;
    s.intend = k * ints_each;
    write_segment(dir.path() / seg_name(k), s);
  }
}

tessera::JwstUncalParams params_for(const std::string& path) {
  tessera::JwstUncalParams p;
  p.path = path;
  return p;
}

/// What the engine does on one rank: list, read every header, arrange, read this rank's frames
/// into a Dataset, read extras.
struct RankRead {
  tessera::FrameOrder order;
  tessera::Dataset data;
};

std::vector<tessera::UnitHeader> read_headers(tessera::FrameSource& source) {
  const auto units = source.units();
  std::vector<tessera::UnitHeader> headers;
  for (std::size_t i = 0; i < units.size(); ++i) headers.push_back(source.read_header(i));
  return headers;
}

RankRead read_rank(const tessera::JwstUncalParams& p, int nranks = 1, int rank = 0) {
  auto source = JwstUncal::open(p);
  RankRead out;
  const auto headers = read_headers(*source);
  out.order = source->arrange(headers);
  out.data = tessera::Dataset(out.order.shape, tessera::Partition::frames(out.order.shape, nranks), rank);
  for (const auto& cube : source->cubes()) out.data.add_cube(cube.info, cube.type, 0.0, cube.grouped);
  for (auto& v : out.order.vectors) out.data.frame_vectors()[v.info.name] = v;
  for (std::size_t t = out.data.partition().frame_begin(rank); t < out.data.partition().frame_end(rank); ++t)
    source->read_frame(out.order.units[t], t, out.data);
  source->read_extras(out.data);
  return out;
}

const tessera::FrameVector& vector_of(const tessera::FrameOrder& order, const std::string& name) {
  for (const auto& v : order.vectors)
    if (v.info.name == name) return v;
  throw std::runtime_error("no vector " + name);
}
bool has_vector(const tessera::FrameOrder& order, const std::string& name) {
  for (const auto& v : order.vectors)
    if (v.info.name == name) return true;
  return false;
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

std::string str_attr(const tessera::Dataset& d, const std::string& key) {
  return std::get<std::string>(d.attributes().at(key));
}
std::int64_t int_attr(const tessera::Dataset& d, const std::string& key) {
  return std::get<std::int64_t>(d.attributes().at(key));
}

// ---------------------------------------------------------------------------------------------

TEST(JwstUncal, SchemaDocumentsEveryParameter) {
  const auto docs = tessera::JwstUncalParams::schema().docs();
  ASSERT_EQ(docs.size(), 3u);
  for (const auto& d : docs) EXPECT_FALSE(d.doc.empty()) << d.name;
  EXPECT_EQ(docs[0].name, "path");
  EXPECT_EQ(docs[0].default_text, "(required)");
}

TEST(JwstUncal, OpenTouchesNothingAndProvidesTheDataModel) {
  auto source = JwstUncal::open(params_for("/nonexistent/uncal"));
  std::map<std::string, tessera::DataOut> provided;
  for (const auto& d : source->provides()) provided[d.info.name] = d;
  ASSERT_TRUE(provided.count("ramp"));
  EXPECT_TRUE(provided["ramp"].grouped);
  EXPECT_EQ(provided["ramp"].type, tessera::ElementType::Float32);
  EXPECT_EQ(provided["ramp"].info.units, "DN");
  ASSERT_TRUE(provided.count("groupdq"));
  EXPECT_TRUE(provided["groupdq"].grouped);
  EXPECT_EQ(provided["groupdq"].type, tessera::ElementType::UInt8);
  ASSERT_TRUE(provided.count("dq"));
  EXPECT_FALSE(provided["dq"].grouped);
  EXPECT_EQ(provided["dq"].type, tessera::ElementType::UInt32);
  for (const char* v : {"time", "int_start", "int_end", "int_mid_bjd", "integration", "segment"})
    EXPECT_TRUE(provided.count(v)) << v;
  EXPECT_TRUE(provided["integration"].integer);
}

TEST(JwstUncal, TwoSegmentsReadAsOneSeriesInOrder) {
  TempDir dir;
  // Names sort the other way round from EXSEGNUM: the order must come from the headers.
  Seg a;
  a.exsegnum = 1, a.intstart = 1, a.intend = 3;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6;
  write_segment(dir.path() / "z_seg001_nis_uncal.fits", a);
  write_segment(dir.path() / "a_seg002_nis_uncal.fits", b);
  write_segment(dir.path() / "notes_rateints.fits", a);  // not an uncal file: ignored

  RankRead r = read_rank(params_for(dir.str()));
  const tessera::CubeShape expected{6, 3, 4, 2};
  EXPECT_EQ(r.order.shape, expected);
  // units are in listing (name) order: a_seg002 is unit 0.
  EXPECT_EQ(r.order.units, (std::vector<std::size_t>{1, 1, 1, 0, 0, 0}));

  auto ramp = r.data.frames<float>("ramp");
  ASSERT_EQ(ramp.groups, 2u);
  for (std::size_t t = 0; t < 6; ++t)
    for (std::size_t g = 0; g < 2; ++g)
      for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 4; ++x)
          ASSERT_EQ(ramp(t, g, y, x), static_cast<float>(sci_value(static_cast<long long>(t) + 1, g, y, x)))
              << t << " " << g << " " << y << " " << x;
  EXPECT_EQ(ramp(5, 1, 2, 3), 36123.0f);  // above 32767: BZERO honoured

  auto dq = r.data.frames<std::uint32_t>("dq");
  auto gdq = r.data.frames<std::uint8_t>("groupdq");
  for (std::size_t t = 0; t < 6; ++t) {
    for (auto v : dq.frame(t)) ASSERT_EQ(v, 0u);
    for (auto v : gdq.frame(t)) ASSERT_EQ(v, 0u);
    EXPECT_EQ(gdq.frame(t).size(), 2u * 3 * 4);
  }

  const auto& time = vector_of(r.order, "time");
  const auto& start = vector_of(r.order, "int_start");
  const auto& end = vector_of(r.order, "int_end");
  const auto& bjd = vector_of(r.order, "int_mid_bjd");
  const auto& integration = vector_of(r.order, "integration");
  const auto& segment = vector_of(r.order, "segment");
  for (std::size_t t = 0; t < 6; ++t) {
    const long long n = static_cast<long long>(t) + 1;
    EXPECT_DOUBLE_EQ(time.values[t], mid_time(n));
    EXPECT_DOUBLE_EQ(start.values[t], mid_time(n) - 0.0004);
    EXPECT_DOUBLE_EQ(end.values[t], mid_time(n) + 0.0004);
    EXPECT_DOUBLE_EQ(bjd.values[t], mid_time(n) + 0.0008);
    EXPECT_EQ(integration.values[t], static_cast<double>(n));
    EXPECT_EQ(segment.values[t], t < 3 ? 1.0 : 2.0);
  }
  EXPECT_TRUE(integration.integer);
  EXPECT_TRUE(segment.integer);
  EXPECT_FALSE(time.integer);

  EXPECT_EQ(str_attr(r.data, "instrument"), "NIRISS");
  EXPECT_EQ(str_attr(r.data, "detector"), "NIS");
  EXPECT_EQ(str_attr(r.data, "exp_type"), "NIS_SOSS");
  EXPECT_EQ(str_attr(r.data, "readpatt"), "NISRAPID");
  EXPECT_EQ(str_attr(r.data, "subarray"), "SUBSTRIP256");
  EXPECT_EQ(int_attr(r.data, "ngroups"), 2);
  EXPECT_EQ(int_attr(r.data, "nints"), 6);
  EXPECT_EQ(int_attr(r.data, "nframes"), 1);
  EXPECT_EQ(int_attr(r.data, "groupgap"), 0);
  EXPECT_EQ(int_attr(r.data, "substrt1"), 1);
  EXPECT_EQ(int_attr(r.data, "substrt2"), 1793);
  EXPECT_DOUBLE_EQ(std::get<double>(r.data.attributes().at("tgroup")), 5.494);
  EXPECT_DOUBLE_EQ(std::get<double>(r.data.attributes().at("tframe")), 5.494);
  EXPECT_EQ(str_attr(r.data, "int_times_source"), "INT_TIMES");
  EXPECT_EQ(str_attr(r.data, "segment_files"), "z_seg001_nis_uncal.fits,a_seg002_nis_uncal.fits");
}

TEST(JwstUncal, SameDataAndAttributesOnOneTwoAndThreeRanks) {
  TempDir dir;
  write_exposure(dir, 3, 3);  // 9 integrations in 3 segments: rank boundaries cut segments
  const auto p = params_for(dir.str());
  const RankRead whole = read_rank(p);
  for (int nranks : {2, 3, 4}) {
    std::vector<float> joined;
    for (int rank = 0; rank < nranks; ++rank) {
      RankRead part = read_rank(p, nranks, rank);
      EXPECT_EQ(part.data.attributes(), whole.data.attributes()) << nranks << " ranks, rank " << rank;
      const auto& values = std::get<std::vector<float>>(part.data.cube("ramp").values);
      joined.insert(joined.end(), values.begin(), values.end());
    }
    EXPECT_EQ(joined, std::get<std::vector<float>>(whole.data.cube("ramp").values)) << nranks << " ranks";
  }
}

TEST(JwstUncal, OneSegmentCarriesTheWholeExposuresTable) {
  TempDir dir;
  Seg a;
  a.whole_table = true;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6, b.int_times = false;
  write_segment(dir.path() / seg_name(1), a);
  write_segment(dir.path() / seg_name(2), b);
  RankRead r = read_rank(params_for(dir.str()));
  const auto& time = vector_of(r.order, "time");
  ASSERT_EQ(time.values.size(), 6u);
  for (std::size_t t = 0; t < 6; ++t) EXPECT_DOUBLE_EQ(time.values[t], mid_time(static_cast<long long>(t) + 1));
}

TEST(JwstUncal, SegmentsParameterReadsPartOfTheExposure) {
  TempDir dir;
  write_exposure(dir, 3, 2);
  auto p = params_for(dir.str());
  p.segments = {seg_name(3), seg_name(2)};
  RankRead r = read_rank(p);
  EXPECT_EQ(r.order.shape.nt, 4u);
  EXPECT_EQ(vector_of(r.order, "integration").values, (std::vector<double>{3, 4, 5, 6}));
  EXPECT_EQ(vector_of(r.order, "segment").values, (std::vector<double>{2, 2, 3, 3}));
  EXPECT_EQ(r.data.frames<float>("ramp")(0, 0, 0, 0), static_cast<float>(sci_value(3, 0, 0, 0)));
  EXPECT_EQ(int_attr(r.data, "nints"), 6);  // the exposure's, not the part read
}

TEST(JwstUncal, PathMayBeOneFile) {
  TempDir dir;
  write_exposure(dir, 2, 3);
  RankRead r = read_rank(params_for((dir.path() / seg_name(2)).string()));
  EXPECT_EQ(r.order.shape, (tessera::CubeShape{3, 3, 4, 2}));
  EXPECT_EQ(r.data.frames<float>("ramp")(0, 1, 2, 3), static_cast<float>(sci_value(4, 1, 2, 3)));
}

TEST(JwstUncal, WithoutSegmentKeywordsAFileIsTheWholeExposure) {
  TempDir dir;
  Seg s;
  s.keywords = false;
  s.intend = 3, s.nints = 3;
  write_segment(dir.path() / "jw_nis_uncal.fits", s);
  RankRead r = read_rank(params_for(dir.str()));
  EXPECT_EQ(r.order.shape.nt, 3u);
  EXPECT_EQ(vector_of(r.order, "integration").values, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(vector_of(r.order, "segment").values, (std::vector<double>{1, 1, 1}));
}

TEST(JwstUncal, NoBjdColumnsNoBjdVector) {
  TempDir dir;
  Seg s;
  s.bjd = false;
  s.nints = 3, s.exsegtot = 1;
  write_segment(dir.path() / seg_name(1), s);
  auto source = JwstUncal::open(params_for(dir.str()));
  bool declared = false;
  for (const auto& d : source->provides()) declared = declared || d.info.name == "int_mid_bjd";
  EXPECT_FALSE(declared);
  RankRead r = read_rank(params_for(dir.str()));
  EXPECT_FALSE(has_vector(r.order, "int_mid_bjd"));
  EXPECT_TRUE(has_vector(r.order, "time"));
}

TEST(JwstUncal, MissingIntTimesIsAnErrorUnlessEstimated) {
  TempDir dir;
  Seg s;
  s.int_times = false;
  s.nints = 3, s.exsegtot = 1;
  write_segment(dir.path() / seg_name(1), s);
  auto p = params_for(dir.str());
  const std::string message = input_error([&] { read_rank(p); });
  EXPECT_NE(message.find(seg_name(1)), std::string::npos) << message;
  EXPECT_NE(message.find("INT_TIMES"), std::string::npos) << message;
  EXPECT_NE(message.find("missing_int_times"), std::string::npos) << message;

  p.missing_int_times = "estimate";
  RankRead r = read_rank(p);
  // Integration n starts at EXPSTART + (n-1)(NGROUPS TGROUP + 1 TFRAME) and lasts NGROUPS TGROUP.
  const double cycle = (2 * 5.494 + 5.494) / 86400.0, duration = 2 * 5.494 / 86400.0;
  const auto& time = vector_of(r.order, "time");
  for (std::size_t t = 0; t < 3; ++t) {
    EXPECT_NEAR(vector_of(r.order, "int_start").values[t], 60100.0 + static_cast<double>(t) * cycle, 1e-10);
    EXPECT_NEAR(time.values[t], 60100.0 + static_cast<double>(t) * cycle + duration / 2, 1e-10);
  }
  EXPECT_FALSE(has_vector(r.order, "int_mid_bjd"));
  EXPECT_NE(str_attr(r.data, "int_times_source").find("estimated"), std::string::npos);
}

// --- bad input --------------------------------------------------------------------------------

TEST(JwstUncalErrors, MissingMiddleSegment) {
  TempDir dir;
  write_exposure(dir, 3, 2);
  fs::remove(dir.path() / seg_name(2));
  const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
  EXPECT_NE(message.find("segment 2 of the exposure is missing"), std::string::npos) << message;
  EXPECT_NE(message.find(seg_name(1)), std::string::npos) << message;
  EXPECT_NE(message.find(seg_name(3)), std::string::npos) << message;
}

TEST(JwstUncalErrors, MissingIntegrationsBetweenSegments) {
  TempDir dir;
  Seg a;
  a.intend = 3;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 5, b.intend = 6;
  write_segment(dir.path() / seg_name(1), a);
  write_segment(dir.path() / seg_name(2), b);
  const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
  EXPECT_NE(message.find("integrations 4..4 are missing"), std::string::npos) << message;
}

TEST(JwstUncalErrors, OverlappingIntegrations) {
  TempDir dir;
  Seg a;
  a.intend = 4;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6;
  write_segment(dir.path() / seg_name(1), a);
  write_segment(dir.path() / seg_name(2), b);
  const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
  EXPECT_NE(message.find("overlap"), std::string::npos) << message;
  EXPECT_NE(message.find(seg_name(2)), std::string::npos) << message;
}

TEST(JwstUncalErrors, TwoExposuresInOneDirectory) {
  TempDir dir;
  write_exposure(dir, 2, 3);
  Seg other;
  write_segment(dir.path() / "jw09999001001_01101_00001-seg001_nis_uncal.fits", other);
  const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
  EXPECT_NE(message.find("same segment"), std::string::npos) << message;
  EXPECT_NE(message.find("segments"), std::string::npos) << message;
}

TEST(JwstUncalErrors, InconsistentNgroups) {
  TempDir dir;
  Seg a;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6, b.ng = 3;
  write_segment(dir.path() / seg_name(1), a);
  write_segment(dir.path() / seg_name(2), b);
  const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
  EXPECT_NE(message.find("NGROUPS = 3"), std::string::npos) << message;
  EXPECT_NE(message.find("NGROUPS = 2"), std::string::npos) << message;
  EXPECT_NE(message.find(seg_name(1)), std::string::npos) << message;
  EXPECT_NE(message.find(seg_name(2)), std::string::npos) << message;
}

TEST(JwstUncalErrors, InconsistentShape) {
  TempDir dir;
  Seg a;
  Seg b = a;
  b.exsegnum = 2, b.intstart = 4, b.intend = 6, b.nx = 5;
  write_segment(dir.path() / seg_name(1), a);
  write_segment(dir.path() / seg_name(2), b);
  const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
  EXPECT_NE(message.find("3 x 5"), std::string::npos) << message;
  EXPECT_NE(message.find("3 x 4"), std::string::npos) << message;
}

TEST(JwstUncalErrors, InconsistentReadoutKeywords) {
  struct Case {
    const char* key;
    void (*change)(Seg&);
  };
  const Case cases[] = {{"READPATT", [](Seg& s) { s.readpatt = "NIS"; }},
                        {"SUBARRAY", [](Seg& s) { s.subarray = "SUBSTRIP96"; }},
                        {"TGROUP", [](Seg& s) { s.tgroup = 2.2; }}};
  for (const Case& c : cases) {
    TempDir dir;
    Seg a;
    Seg b = a;
    b.exsegnum = 2, b.intstart = 4, b.intend = 6;
    c.change(b);
    write_segment(dir.path() / seg_name(1), a);
    write_segment(dir.path() / seg_name(2), b);
    const std::string message = input_error([&] { read_rank(params_for(dir.str())); });
    EXPECT_NE(message.find(c.key), std::string::npos) << message;
    EXPECT_NE(message.find(seg_name(1)), std::string::npos) << message;
    EXPECT_NE(message.find(seg_name(2)), std::string::npos) << message;
  }
}

TEST(JwstUncalErrors, NgroupsKeywordDisagreesWithSci) {
  TempDir dir;
  write_exposure(dir, 1, 3);
  {
    auto file = tessera::fits::File::create((dir.path() / seg_name(2)).string());
    file.write_key("NGROUPS", 5, "");
    file.write_key("INTSTART", 1, "");
    file.write_key("INTEND", 1, "");
    file.append_image_uint16("SCI", std::vector<std::uint16_t>(2 * 3 * 4, 1), {4, 3, 2, 1});
    file.close();
  }
  auto source = JwstUncal::open(params_for((dir.path() / seg_name(2)).string()));
  source->units();
  const std::string message = input_error([&] { source->read_header(0); });
  EXPECT_NE(message.find("NGROUPS = 5 but SCI holds 2 groups"), std::string::npos) << message;
}

TEST(JwstUncalErrors, TruncatedFileNamesFileAndIntegration) {
  TempDir dir;
  Seg s;
  s.intend = 6, s.nints = 6, s.exsegtot = 1, s.ny = 40, s.nx = 50;  // 4000 values = 8000 bytes per integration
  const fs::path path = dir.path() / seg_name(1);
  write_segment(path, s);
  // Header blocks: primary and SCI are one 2880-byte block each here, so integration n's data
  // are bytes [5760 + 8000 (n-1), 5760 + 8000 n). Cut inside integration 4, past the 2880-byte
  // block where integration 3 ends (FITS is read in whole blocks).
  const std::size_t cut = 2 * 2880 + 3 * 8000 + 4240;
  ASSERT_GT(fs::file_size(path), cut);
  fs::resize_file(path, cut);
  auto source = JwstUncal::open(params_for(path.string()));
  source->units();
  const std::string message = input_error([&] { source->read_header(0); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("but integration 4 (number 4 of 6 in this file)"), std::string::npos) << message;
}

TEST(JwstUncalErrors, FileTruncatedAfterItsHeaderWasRead) {
  TempDir dir;
  Seg s;
  s.intend = 6, s.nints = 6, s.exsegtot = 1, s.ny = 40, s.nx = 50;
  const fs::path path = dir.path() / seg_name(1);
  write_segment(path, s);
  auto source = JwstUncal::open(params_for(path.string()));
  const auto headers = read_headers(*source);
  const auto order = source->arrange(headers);
  fs::resize_file(path, 2 * 2880 + 4 * 8000 + 4240);  // inside integration 5, past integration 4's last block
  tessera::Dataset data(order.shape, tessera::Partition::frames(order.shape, 1), 0);
  for (const auto& cube : source->cubes()) data.add_cube(cube.info, cube.type, 0.0, cube.grouped);
  for (std::size_t t = 0; t < 4; ++t) source->read_frame(order.units[t], t, data);
  const std::string message = input_error([&] { source->read_frame(order.units[4], 4, data); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("integration 5"), std::string::npos) << message;
}

TEST(JwstUncalErrors, DirectoryWithoutUncalFiles) {
  TempDir dir;
  std::ofstream(dir.path() / "readme.txt") << "nothing here\n";
  auto source = JwstUncal::open(params_for(dir.str()));
  const std::string message = input_error([&] { source->units(); });
  EXPECT_NE(message.find(dir.str()), std::string::npos) << message;
  EXPECT_NE(message.find("no *_uncal.fits"), std::string::npos) << message;
}

TEST(JwstUncalErrors, MissingPathAndMissingListedSegment) {
  TempDir dir;
  auto missing = JwstUncal::open(params_for((dir.path() / "nope").string()));
  EXPECT_NE(input_error([&] { missing->units(); }).find("does not exist"), std::string::npos);
  write_exposure(dir, 1, 2);
  auto p = params_for(dir.str());
  p.segments = {seg_name(1), seg_name(7)};
  auto listed = JwstUncal::open(p);
  const std::string message = input_error([&] { listed->units(); });
  EXPECT_NE(message.find(seg_name(7)), std::string::npos) << message;
  EXPECT_NE(message.find("segments"), std::string::npos) << message;
}

TEST(JwstUncalErrors, SciNotFourDimensional) {
  TempDir dir;
  const fs::path path = dir.path() / seg_name(1);
  {
    auto file = tessera::fits::File::create(path.string());
    file.append_image_uint16("SCI", std::vector<std::uint16_t>(12, 1), {4, 3});
    file.close();
  }
  auto source = JwstUncal::open(params_for(path.string()));
  source->units();
  const std::string message = input_error([&] { source->read_header(0); });
  EXPECT_NE(message.find("SCI has 2 axes; expected 4"), std::string::npos) << message;
}

// --- a whole run ------------------------------------------------------------------------------

TEST(JwstUncalRun, TesseraRunWritesTheRampsAndTimes) {
  std::error_code ec;
  const fs::path tessera = fs::read_symlink("/proc/self/exe", ec).parent_path() / "tessera";
  if (ec || !fs::exists(tessera)) GTEST_SKIP() << "no tessera binary next to this test";
  TempDir dir;
  write_exposure(dir, 2, 3);
  const fs::path workflow = dir.path() / "read.toml";
  std::ofstream(workflow) << "[workflow]\nname = \"read\"\n\n[input]\nkind = \"jwst_uncal\"\npath = \"" << dir.str()
                          << "\"\n\n[output]\npath = \"" << (dir.path() / "out.h5").string() << "\"\n";
  const auto [status, output] = tessera::testing::run_command(tessera.string() + " run " + workflow.string());
  ASSERT_EQ(status, 0) << output;
  const auto file = tessera::h5::File::open((dir.path() / "out.h5").string());
  EXPECT_EQ(file.shape("ramp"), (std::vector<std::size_t>{6, 2, 3, 4}));
  const std::vector<float> ramp = file.read_floats("ramp");
  for (long long n = 1; n <= 6; ++n)
    EXPECT_EQ(ramp[static_cast<std::size_t>(n - 1) * 24 + 12 + 4 + 1], static_cast<float>(sci_value(n, 1, 1, 1)));
  EXPECT_EQ(file.shape("groupdq"), (std::vector<std::size_t>{6, 2, 3, 4}));
  EXPECT_EQ(file.shape("dq"), (std::vector<std::size_t>{6, 3, 4}));
  const std::vector<double> time = file.read_doubles("time");
  ASSERT_EQ(time.size(), 6u);
  EXPECT_DOUBLE_EQ(time[5], mid_time(6));
  EXPECT_EQ(file.read_ints("integration"), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(std::get<std::string>(file.read_attribute("readpatt")), "NISRAPID");
  EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("ngroups")), 2);
}

// --- speed (printed, not asserted) -----------------------------------------------------------

TEST(JwstUncalSpeed, ReadThroughput) {
  TempDir dir;
  Seg s;
  s.ny = 256, s.nx = 512, s.ng = 6;  // 1.5 MiB of uint16 per integration
  write_exposure(dir, 2, 10, s);
  auto source = JwstUncal::open(params_for(dir.str()));
  const auto order = source->arrange(read_headers(*source));
  tessera::Dataset data(order.shape, tessera::Partition::frames(order.shape, 1), 0);
  for (const auto& cube : source->cubes()) data.add_cube(cube.info, cube.type, 0.0, cube.grouped);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t t = 0; t < order.shape.nt; ++t) source->read_frame(order.units[t], t, data);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double samples = static_cast<double>(order.shape.nt * order.shape.ng * order.shape.ny * order.shape.nx);
  std::printf("jwst_uncal read_frame: %.1f MB of uint16 (page cache) in %.3f s = %.0f MB/s, %.0f M samples/s\n",
              2 * samples / 1e6, seconds, 2 * samples / 1e6 / seconds, samples / 1e6 / seconds);
  EXPECT_EQ(data.frames<float>("ramp")(19, 5, 255, 511), static_cast<float>(sci_value(20, 5, 255, 511)));
}

}  // namespace
