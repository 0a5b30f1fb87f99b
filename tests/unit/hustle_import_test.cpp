// `tessera import-hustle`: the Python-literal parser, the .hustle line format, the mapping of
// both template variants (tests/data/hustle/), unknown keys, errors, and the command line.
#include <gtest/gtest.h>

#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "steps/import/hustle.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/registry.hpp"

namespace {

namespace fs = std::filesystem;
using tessera::ConfigError;
using tessera::hustle::PyValue;
using K = PyValue::Kind;

PyValue lit(std::string_view text) { return tessera::hustle::parse_literal(text, "v"); }

PyValue ints(std::vector<std::int64_t> v) {
  std::vector<PyValue> items;
  for (auto i : v) items.push_back(PyValue::of_int(i));
  return PyValue::list(items);
}

/// The ConfigError message of `f()`, or "" when it does not throw.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string fixture_path(const std::string& name) {
  return std::string(TESSERA_SOURCE_DIR) + "/tests/data/hustle/" + name;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Python literals
// ---------------------------------------------------------------------------------------------

TEST(PythonLiteral, Scalars) {
  EXPECT_EQ(lit("None").kind, K::None);
  EXPECT_EQ(lit("True"), PyValue::of_bool(true));
  EXPECT_EQ(lit("False"), PyValue::of_bool(false));
  EXPECT_EQ(lit("0"), PyValue::of_int(0));
  EXPECT_EQ(lit("4096"), PyValue::of_int(4096));
  EXPECT_EQ(lit("-20"), PyValue::of_int(-20));
  EXPECT_EQ(lit("+3"), PyValue::of_int(3));
  EXPECT_EQ(lit("1_000"), PyValue::of_int(1000));
  EXPECT_EQ(lit("3.5"), PyValue::of_float(3.5));
  EXPECT_EQ(lit("5."), PyValue::of_float(5.0));
  EXPECT_EQ(lit(".25"), PyValue::of_float(0.25));
  EXPECT_EQ(lit("1e-3"), PyValue::of_float(0.001));
  EXPECT_EQ(lit("-2.0e1"), PyValue::of_float(-20.0));
  EXPECT_EQ(lit("2E+2"), PyValue::of_float(200.0));
  EXPECT_EQ(lit("  7  "), PyValue::of_int(7));
  EXPECT_EQ(lit("- 4"), PyValue::of_int(-4));  // Python allows a blank after a unary minus
}

TEST(PythonLiteral, Strings) {
  EXPECT_EQ(lit("'1D_smooth'"), PyValue::of_string("1D_smooth"));
  EXPECT_EQ(lit("\"Gaussian\""), PyValue::of_string("Gaussian"));
  EXPECT_EQ(lit("''"), PyValue::of_string(""));
  EXPECT_EQ(lit("'a#b'"), PyValue::of_string("a#b"));
  EXPECT_EQ(lit("'it\\'s'"), PyValue::of_string("it's"));
  EXPECT_EQ(lit("\"say \\\"hi\\\"\""), PyValue::of_string("say \"hi\""));
  EXPECT_EQ(lit("'a\\tb\\n'"), PyValue::of_string("a\tb\n"));
  EXPECT_EQ(lit("'\\x41\\u00e9'"), PyValue::of_string("A\xC3\xA9"));
  // An unknown escape stays as written, as in Python: Windows paths survive.
  EXPECT_EQ(lit("'C:\\data'"), PyValue::of_string("C:\\data"));
  EXPECT_EQ(lit("'a' \"b\""), PyValue::of_string("ab"));  // adjacent literals concatenate
}

TEST(PythonLiteral, ListsAndTuples) {
  EXPECT_EQ(lit("[]"), PyValue::list({}));
  EXPECT_EQ(lit("[16,4096]"), ints({16, 4096}));
  EXPECT_EQ(lit("[ 1 , 2 , ]"), ints({1, 2}));
  EXPECT_EQ(lit("[1.5,]"), PyValue::list({PyValue::of_float(1.5)}));
  EXPECT_EQ(lit("[[260, 370, 640, 1100],]"), PyValue::list({ints({260, 370, 640, 1100})}));
  EXPECT_EQ(lit("[[0,150,0,400],[440,590,0,400]]"),
            PyValue::list({ints({0, 150, 0, 400}), ints({440, 590, 0, 400})}));
  EXPECT_EQ(lit("()"), PyValue::tuple({}));
  EXPECT_EQ(lit("('+1',)"), PyValue::tuple({PyValue::of_string("+1")}));
  EXPECT_EQ(lit("(3, 3)"), PyValue::tuple({PyValue::of_int(3), PyValue::of_int(3)}));
  EXPECT_EQ(lit("(5)"), PyValue::of_int(5));               // parentheses alone make no tuple
  EXPECT_EQ(lit("('+1')"), PyValue::of_string("+1"));       // ... the usual one-element-tuple slip
  EXPECT_EQ(lit("[None, True, 'x', (1, [2])]"),
            PyValue::list({PyValue::none(), PyValue::of_bool(true), PyValue::of_string("x"),
                           PyValue::tuple({PyValue::of_int(1), ints({2})})}));
  EXPECT_EQ(lit("('+1', '-1')").repr(), "('+1', '-1')");
  EXPECT_EQ(lit("('+1',)").repr(), "('+1',)");
}

TEST(PythonLiteral, RangeComprehension) {
  EXPECT_EQ(lit("[i for i in range(10)]"), ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(lit("[ row for row in range( 2 , 5 ) ]"), ints({2, 3, 4}));
  EXPECT_EQ(lit("[i for i in range(2, 20, 4)]"), ints({2, 6, 10, 14, 18}));
  EXPECT_EQ(lit("[i for i in range(5, 0, -2)]"), ints({5, 3, 1}));
  EXPECT_EQ(lit("[i for i in range(3, 3)]"), ints({}));
  EXPECT_EQ(lit("[i for i in range(-2)]"), ints({}));
  EXPECT_EQ(lit("range(3)"), ints({0, 1, 2}));
  EXPECT_EQ(lit("list(range(1, 3))"), ints({1, 2}));
  // A list that starts with a name is still a list.
  EXPECT_EQ(lit("[None]"), PyValue::list({PyValue::none()}));
}

TEST(PythonLiteral, ErrorsNameTheColumn) {
  auto expect_error = [](std::string_view text, const std::string& expected) {
    const std::string message = error_of([&] { lit(text); });
    EXPECT_NE(message.find(expected), std::string::npos) << "for " << text << ": " << message;
  };
  expect_error("'abc", "v:1: unterminated string");
  expect_error("[1, 2", "unterminated list");
  expect_error("[1 2]", "v:4: expected ',' or ']' in a list");
  expect_error("(1, 2", "unterminated tuple");
  expect_error("abc", "v:1: unknown name 'abc' (strings need quotes: 'abc')");
  expect_error("true", "did you mean True?");
  expect_error("none", "did you mean None?");
  expect_error("[2*i for i in range(3)]", "v:3: expected ',' or ']'");
  expect_error("[i for j in range(3)]", "only the comprehension [i for i in range(...)] is supported");
  expect_error("[i for i in range(3) if i]", "no conditions");
  expect_error("[i for i in range(1.5)]", "range() takes integers, not the float 1.5");
  expect_error("range(1, 2, 0)", "step must not be zero");
  expect_error("range(0, 100000000)", "more than the 1000000 allowed");
  expect_error("0x10", "hexadecimal");
  expect_error("{'a': 1}", "dicts and sets are not supported");
  expect_error("99999999999999999999", "integer out of range");
  expect_error("1e999", "float out of range");
  expect_error("1 2", "v:3: unexpected '2' after the value 1");
  expect_error("-'a'", "unary '-' applies to numbers, not to the string 'a'");
  expect_error("10abc", "malformed number");
  expect_error("1e", "missing exponent digits");
  expect_error("r'x'", "string prefixes");
  expect_error("'''x'''", "triple-quoted");
  expect_error("", "missing value");
}

// ---------------------------------------------------------------------------------------------
// .hustle lines
// ---------------------------------------------------------------------------------------------

TEST(HustleFile, KeysValuesCommentsAndBlankLines) {
  const auto file = tessera::hustle::parse_hustle(
      "# a comment line\n"
      "\n"
      "   \t\n"
      "free_sigma 3.5 # clip threshold\n"
      "  smth_type\t'1D_smooth'\t# indented, tabs\n"
      "path_to_Pagul 'a#b'   # the '#' inside quotes is kept\n"
      "rows [i for i in range(3)]\n"   // no comment at all
      "traces_included ('+1', '-1') # a 2-tuple\r\n",  // CRLF
      "f.hustle");
  ASSERT_EQ(file.entries.size(), 5u);
  EXPECT_EQ(file.entries[0].key, "free_sigma");
  EXPECT_EQ(file.entries[0].line, 4);
  EXPECT_EQ(file.entries[0].value, PyValue::of_float(3.5));
  EXPECT_EQ(file.entries[0].value_text, "3.5");
  EXPECT_EQ(file.entries[1].key, "smth_type");
  EXPECT_EQ(file.entries[1].value, PyValue::of_string("1D_smooth"));
  EXPECT_EQ(file.entries[2].value, PyValue::of_string("a#b"));
  EXPECT_EQ(file.entries[2].value_text, "'a#b'");
  EXPECT_EQ(file.entries[3].value, ints({0, 1, 2}));
  EXPECT_EQ(file.entries[4].value.items.size(), 2u);
  EXPECT_EQ(file.entries[4].line, 8);
  EXPECT_EQ(file.endparse_line, 0);
}

TEST(HustleFile, EndparseStopsParsing) {
  const auto file = tessera::hustle::parse_hustle(
      "free_sigma 3.5\n"
      "# ENDPARSE\n"
      "this is not a key value line ((\n"
      "free_sigma 9\n",
      "f.hustle");
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(file.endparse_line, 2);
  // Without the space, indented, with trailing blanks: still the marker.
  EXPECT_EQ(tessera::hustle::parse_hustle("a 1\n  #ENDPARSE  \nb (\n", "f").entries.size(), 1u);
  // A comment that merely mentions it is not the marker.
  EXPECT_EQ(tessera::hustle::parse_hustle("# ENDPARSE here\na 1\n", "f").entries.size(), 1u);
}

TEST(HustleFile, MalformedLinesNameFileLineAndColumn) {
  auto expect_error = [](std::string_view text, const std::string& expected) {
    const std::string message = error_of([&] { tessera::hustle::parse_hustle(text, "cfg.hustle"); });
    EXPECT_NE(message.find(expected), std::string::npos) << "for " << text << ": " << message;
  };
  expect_error("a 1\nfree_sigma 'abc\n", "cfg.hustle:2:12: unterminated string");
  expect_error("a 1\n\nrows [1, 2\n", "cfg.hustle:3:");
  expect_error("led_n\n", "cfg.hustle:1:1: key 'led_n' has no value");
  expect_error("led_n    # nothing\n", "key 'led_n' has no value");
  expect_error("led_n = 2\n", "cfg.hustle:1:7: write 'key value' without '='");
  expect_error("led_n=2\n", "without '='");
  expect_error("2led 3\n", "cfg.hustle:1:1: expected a key name");
  expect_error("smth_type 1D_smooth\n", "cfg.hustle:1:11: malformed number");
  expect_error("fit gaussian # forgot quotes\n", "cfg.hustle:1:5: unknown name 'gaussian' (strings need quotes");
  expect_error("verbose 2 3\n", "cfg.hustle:1:11: unexpected '3'");
  expect_error("a 1\nb 2\na 3\n", "cfg.hustle:3:1: key 'a' given twice (first at line 1)");
}

// ---------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------

struct Converted {
  tessera::hustle::Conversion conversion;
  toml::table root;
  std::map<std::string, const toml::table*> steps;
  std::vector<std::string> step_ids;
};

Converted convert_file(const std::string& name) {
  Converted c;
  const std::string path = fixture_path(name);
  c.conversion = tessera::hustle::convert_text(read(path), path);
  c.root = toml::parse(std::string_view(c.conversion.toml), std::string_view("converted.toml"));
  for (const auto& node : *c.root["step"].as_array()) {
    const auto* t = node.as_table();
    const std::string id = t->get_as<std::string>("id")->get();
    c.steps[id] = t;
    c.step_ids.push_back(id);
  }
  return c;
}

std::vector<double> numbers(const toml::node* node) {
  std::vector<double> out;
  if (!node || !node->as_array()) return {-999};
  for (const auto& e : *node->as_array()) out.push_back(e.value<double>().value_or(-999));
  return out;
}

const toml::node* param(const Converted& c, const std::string& step, const std::string& name) {
  return c.steps.at(step)->get(name);
}

bool enabled(const Converted& c, const std::string& step) { return param(c, step, "enabled")->value<bool>().value(); }

const std::vector<std::string> kStepOrder = {"hst_dq",      "fixed_iter", "free_iter",  "led",     "spatial_smooth",
                                             "bkg_uniform", "bkg_column", "bkg_sky",    "locate",  "track_0th",
                                             "track_stars", "quicklook",  "plots"};

TEST(HustleMapping, HustleToolsTemplate) {
  const Converted c = convert_file("hustle_tools_stage1.hustle");
  EXPECT_TRUE(c.conversion.unknown.empty());
  EXPECT_TRUE(c.conversion.warnings.empty());
  EXPECT_EQ(c.conversion.mapped_keys.size(), 53u);  // every key of the file, none after ENDPARSE
  EXPECT_EQ(c.step_ids, kStepOrder);
  for (const auto& [id, table] : c.steps) EXPECT_EQ(table->get_as<std::string>("uses")->get(), id);

  EXPECT_EQ(c.root["workflow"]["name"].value<std::string>(), "hustle_tools_stage1");
  EXPECT_EQ(c.root["workflow"]["verbose"].value<std::int64_t>(), 2);
  EXPECT_EQ(c.root["input"]["kind"].value<std::string>(), "hst_flt_dir");
  EXPECT_EQ(c.root["input"]["path"].value<std::string>(), "./files");
  EXPECT_EQ(c.root["input"]["skip_first_fm"].value<bool>(), false);
  EXPECT_EQ(c.root["input"]["skip_first_or"].value<bool>(), false);
  EXPECT_EQ(c.root["output"]["run"].value<std::string>(), "run_1");
  EXPECT_EQ(c.root["output"]["path"].value<std::string>(), "{input.path}/outputs/stage1/{output.run}/clean_obs.h5");
  EXPECT_EQ(c.root["output"]["save"].value<bool>(), true);  // do_save True (the False after ENDPARSE is ignored)
  EXPECT_EQ(c.root["output"]["save_plots"].value<std::int64_t>(), 2);
  EXPECT_EQ(c.root["output"]["show_plots"].value<std::int64_t>(), 0);

  for (const char* id : {"hst_dq", "fixed_iter", "free_iter", "led", "spatial_smooth", "bkg_uniform", "bkg_column",
                         "locate", "track_0th", "quicklook", "plots"})
    EXPECT_TRUE(enabled(c, id)) << id;
  EXPECT_FALSE(enabled(c, "bkg_sky"));
  EXPECT_FALSE(enabled(c, "track_stars"));

  EXPECT_EQ(numbers(param(c, "hst_dq", "hst_flags")), (std::vector<double>{16, 4096}));
  EXPECT_TRUE(param(c, "hst_dq", "hst_flags")->as_array()->get(0)->is_integer());
  EXPECT_EQ(param(c, "hst_dq", "hst_replace")->value<bool>(), true);
  EXPECT_EQ(numbers(param(c, "fixed_iter", "fixed_sigmas")), (std::vector<double>{10, 10}));
  EXPECT_EQ(param(c, "fixed_iter", "replacement"), nullptr);  // None, and unset is the default
  EXPECT_NE(c.conversion.toml.find("# replacement = None in the .hustle: unset"), std::string::npos);
  EXPECT_EQ(param(c, "free_iter", "free_sigma")->value<double>(), 3.5);
  EXPECT_EQ(param(c, "led", "led_threshold")->value<double>(), 10);
  EXPECT_EQ(param(c, "led", "led_factor")->value<std::int64_t>(), 2);
  // led_n None: "until none found", which is not the default (2), so it is written as "none".
  EXPECT_EQ(param(c, "led", "led_n")->value<std::string>(), "none");
  EXPECT_EQ(param(c, "led", "fine_structure")->value<bool>(), true);
  EXPECT_EQ(param(c, "led", "contrast_factor")->value<double>(), 5);
  EXPECT_EQ(param(c, "spatial_smooth", "smth_type")->value<std::string>(), "2D_smooth");
  EXPECT_EQ(numbers(param(c, "spatial_smooth", "smth_kernel")), (std::vector<double>{3, 3}));
  EXPECT_EQ(param(c, "spatial_smooth", "smth_threshold")->value<double>(), 5);
  const auto* boxes = param(c, "spatial_smooth", "smth_bounds")->as_array();
  ASSERT_NE(boxes, nullptr);
  ASSERT_EQ(boxes->size(), 1u);
  EXPECT_EQ(numbers(boxes->get(0)), (std::vector<double>{260, 370, 640, 1100}));
  EXPECT_EQ(param(c, "bkg_uniform", "fit"), nullptr);
  EXPECT_NE(c.conversion.toml.find("# fit = None in the .hustle: unset"), std::string::npos);
  const auto* bounds = param(c, "bkg_uniform", "bounds")->as_array();
  ASSERT_EQ(bounds->size(), 2u);
  EXPECT_EQ(numbers(bounds->get(1)), (std::vector<double>{440, 590, 0, 400}));
  EXPECT_EQ(param(c, "bkg_uniform", "hist_min")->value<double>(), -20);
  EXPECT_EQ(param(c, "bkg_uniform", "hist_max")->value<double>(), 50);
  EXPECT_EQ(param(c, "bkg_uniform", "hist_bins")->value<std::int64_t>(), 1000);
  EXPECT_EQ(numbers(param(c, "bkg_column", "rows")), (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(param(c, "bkg_column", "mask_trace")->value<bool>(), true);
  EXPECT_EQ(param(c, "bkg_column", "dist_from_trace")->value<std::int64_t>(), 100);
  EXPECT_EQ(param(c, "bkg_column", "col_sigma")->value<double>(), 3);
  EXPECT_EQ(param(c, "bkg_sky", "path_to_Pagul")->value<std::string>(), "./");
  EXPECT_EQ(param(c, "bkg_sky", "mask_parameter")->value<double>(), 0.001);
  EXPECT_EQ(param(c, "bkg_sky", "smooth_fits")->value<bool>(), true);
  EXPECT_EQ(param(c, "bkg_sky", "smoothing_param")->value<double>(), 2.5);
  EXPECT_EQ(param(c, "bkg_sky", "median_columns")->value<bool>(), true);
  EXPECT_EQ(numbers(param(c, "locate", "location")), (std::vector<double>{970, 170}));
  // do_location is on: track_0th starts from locate's result, as the template does.
  EXPECT_EQ(param(c, "track_0th", "location"), nullptr);
  const auto* stars = param(c, "track_stars", "bkg_stars_loc")->as_array();
  ASSERT_EQ(stars->size(), 2u);  // kept as given, although the step is off
  EXPECT_EQ(numbers(stars->get(0)), (std::vector<double>{0, 0}));
  EXPECT_EQ(param(c, "track_stars", "bkg_window")->value<std::int64_t>(), 15);
  const auto* traces = param(c, "quicklook", "traces_included")->as_array();
  ASSERT_EQ(traces->size(), 1u);
  EXPECT_EQ(traces->get(0)->value<std::string>(), "+1");
  EXPECT_EQ(param(c, "quicklook", "include_hst_dq")->value<bool>(), true);

  // Each converted line points back at its .hustle line (free_sigma is on line 24 of the fixture).
  const auto& toml_text = c.conversion.toml;
  const auto at = toml_text.find("free_sigma = 3.5");
  ASSERT_NE(at, std::string::npos);
  const int toml_line = 1 + static_cast<int>(std::count(toml_text.begin(), toml_text.begin() + at, '\n'));
  EXPECT_EQ(c.conversion.hustle_line.at(toml_line), 24);
}

TEST(HustleMapping, ExoticUvisTemplate) {
  const Converted c = convert_file("exotic_uvis_stage1.hustle");
  EXPECT_TRUE(c.conversion.unknown.empty());
  EXPECT_EQ(c.conversion.mapped_keys.size(), 47u);
  EXPECT_EQ(c.step_ids, kStepOrder);

  EXPECT_EQ(c.root["input"]["path"].value<std::string>(), "tutorial");
  EXPECT_EQ(c.root["input"]["skip_first_fm"].value<bool>(), true);
  // output_run None: a run needs a name; the template's "run_1".
  EXPECT_EQ(c.root["output"]["run"].value<std::string>(), "run_1");
  EXPECT_NE(c.conversion.toml.find("output_run = None in the .hustle"), std::string::npos);
  EXPECT_EQ(c.root["workflow"]["verbose"].value<std::int64_t>(), 1);

  // ExoTiC-UVIS has no HST-flag step: the file has no do_hst_flags, so the step is off.
  EXPECT_FALSE(enabled(c, "hst_dq"));
  EXPECT_NE(c.conversion.toml.find("enabled = false  # no do_hst_flags in the .hustle"), std::string::npos);
  EXPECT_EQ(param(c, "hst_dq", "hst_flags"), nullptr);
  EXPECT_TRUE(enabled(c, "fixed_iter"));
  EXPECT_FALSE(enabled(c, "free_iter"));
  EXPECT_TRUE(enabled(c, "plots"));

  EXPECT_EQ(numbers(param(c, "fixed_iter", "fixed_sigmas")), (std::vector<double>{1.5}));
  EXPECT_EQ(param(c, "fixed_iter", "replacement")->value<std::int64_t>(), 3);
  EXPECT_EQ(param(c, "free_iter", "free_sigma")->value<double>(), 4.5);
  EXPECT_EQ(param(c, "led", "led_n")->value<std::int64_t>(), 2);
  EXPECT_TRUE(param(c, "led", "contrast_factor")->is_floating_point());  // 5. stays a float
  EXPECT_EQ(param(c, "led", "contrast_factor")->value<double>(), 5.0);
  // smth_kernel 11 -> [11], with a note.
  EXPECT_EQ(numbers(param(c, "spatial_smooth", "smth_kernel")), (std::vector<double>{11}));
  EXPECT_NE(c.conversion.toml.find("smth_kernel = [11]  # smth_kernel 11 in the .hustle"), std::string::npos);
  // smth_bounds None: the whole frame, not the default box, so written as "none".
  EXPECT_EQ(param(c, "spatial_smooth", "smth_bounds")->value<std::string>(), "none");
  EXPECT_EQ(param(c, "bkg_uniform", "fit")->value<std::string>(), "Gaussian");
  EXPECT_EQ(param(c, "bkg_uniform", "hist_min")->value<double>(), -20.0);
  EXPECT_EQ(param(c, "bkg_uniform", "hist_max")->value<std::string>(), "none");
  EXPECT_EQ(param(c, "bkg_uniform", "hist_bins")->value<std::int64_t>(), 10000);
  EXPECT_EQ(numbers(param(c, "bkg_column", "rows")), (std::vector<double>{2, 6, 10, 14, 18}));
  EXPECT_EQ(param(c, "bkg_sky", "path_to_Pagul")->value<std::string>(), "./sky#v1/");
  EXPECT_EQ(param(c, "bkg_sky", "mask_parameter")->value<double>(), 0.001);
  EXPECT_EQ(numbers(param(c, "locate", "location")), (std::vector<double>{971.5, 168}));
  EXPECT_EQ(param(c, "track_0th", "location"), nullptr);  // from locate (do_location True)
  // Keys this variant lacks keep the step defaults: not written.
  EXPECT_EQ(param(c, "track_stars", "bkg_window"), nullptr);
  EXPECT_EQ(param(c, "quicklook", "traces_included"), nullptr);
  EXPECT_EQ(param(c, "quicklook", "include_hst_dq"), nullptr);
}

TEST(HustleMapping, UnknownKeysAreReportedAndKeptAsComments) {
  const Converted c = convert_file("unknown_keys.hustle");
  ASSERT_EQ(c.conversion.unknown.size(), 2u);
  EXPECT_EQ(c.conversion.unknown[0].key, "do_corners");
  EXPECT_EQ(c.conversion.unknown[0].line, 3);
  EXPECT_EQ(c.conversion.unknown[1].key, "do_pagul");
  EXPECT_EQ(c.conversion.unknown[1].line, 4);
  EXPECT_EQ(c.conversion.unknown[1].suggestion, "do_Pagul");
  ASSERT_EQ(c.conversion.warnings.size(), 2u);
  EXPECT_NE(c.conversion.warnings[0].find("unknown_keys.hustle:3: unknown .hustle key 'do_corners'"),
            std::string::npos) << c.conversion.warnings[0];
  EXPECT_NE(c.conversion.warnings[1].find(":4: unknown .hustle key 'do_pagul' (did you mean 'do_Pagul'?)"),
            std::string::npos) << c.conversion.warnings[1];
  EXPECT_NE(c.conversion.toml.find("# unknown .hustle key 'do_corners' (line 3): do_corners = False\n"),
            std::string::npos);
  EXPECT_NE(c.conversion.toml.find("# unknown .hustle key 'do_pagul' (line 4): do_pagul = True\n"), std::string::npos);
  EXPECT_EQ(c.conversion.mapped_keys, (std::vector<std::string>{"toplevel_dir", "free_sigma"}));
  // The typo did not switch bkg_sky on.
  EXPECT_FALSE(enabled(c, "bkg_sky"));
  EXPECT_EQ(param(c, "free_iter", "free_sigma")->value<std::int64_t>(), 4);
}

TEST(HustleMapping, ValuesOfTheWrongKindNameTheLine) {
  auto expect_error = [](const std::string& body, const std::string& expected) {
    const std::string message =
        error_of([&] { tessera::hustle::convert_text("toplevel_dir 'd'\n" + body, "x.hustle"); });
    EXPECT_NE(message.find(expected), std::string::npos) << "for " << body << ": " << message;
  };
  expect_error("free_sigma 'abc'\n", "x.hustle:2: free_sigma: expected a number, got the string 'abc'");
  expect_error("\ndo_led 'yes'\n", "x.hustle:3: do_led: expected True or False, got the string 'yes'");
  expect_error("do_led 1\n", "expected True or False, got the integer 1");
  expect_error("led_factor 2.5\n", "led_factor: expected an integer, got the float 2.5");
  expect_error("free_sigma True\n", "expected a number, got the boolean True");
  expect_error("free_sigma None\n", "x.hustle:2: free_sigma: None is not allowed here (expected a number)");
  expect_error("location [1, 2, 3]\n", "location: expected an [x, y] position or None, got the list [1, 2, 3]");
  expect_error("bounds [[0, 1, 2]]\n", "bounds: expected a list of [r1, r2, c1, c2] boxes or None");
  expect_error("bounds [0, 1, 2, 3]\n", "expected a list of [r1, r2, c1, c2] boxes");
  expect_error("bkg_stars_loc [[1, 2, 3]]\n", "expected a list of [x, y] positions");
  expect_error("rows [1, 'a']\n", "rows: expected a list of integers, got the list [1, 'a']");
  expect_error("rows 5\n", "rows: expected a list of integers");  // no promotion for rows
  expect_error("traces_included (1,)\n", "expected a list of 'strings'");
  expect_error("verbose 'high'\n", "verbose: expected an integer");
  expect_error("smth_type None\n", "None is not allowed here");
  // No toplevel_dir: not a stage-1 file.
  EXPECT_NE(error_of([] { tessera::hustle::convert_text("free_sigma 3\n", "y.hustle"); })
                .find("y.hustle: no toplevel_dir key"),
            std::string::npos);
}

TEST(HustleMapping, ValueFormsAreNormalised) {
  auto c = tessera::hustle::convert_text(
      "toplevel_dir 'd'\n"
      "led_factor 2.0\n"          // an integral float is an integer
      "fixed_sigmas (4, 4.5)\n"   // tuple -> array
      "traces_included ('+1')\n"  // a string where a 1-tuple was meant
      "hst_flags 4096\n"          // one flag
      "path_to_Pagul 'C:\\sky \"v1\"'\n",
      "z.hustle");
  const auto root = toml::parse(c.toml);
  const auto& steps = *root["step"].as_array();
  auto step = [&](const std::string& id) -> const toml::table& {
    for (const auto& s : steps)
      if (s.as_table()->get_as<std::string>("id")->get() == id) return *s.as_table();
    throw std::runtime_error("no step " + id);
  };
  EXPECT_TRUE(step("led").get("led_factor")->is_integer());
  EXPECT_EQ(numbers(step("fixed_iter").get("fixed_sigmas")), (std::vector<double>{4, 4.5}));
  EXPECT_EQ(step("quicklook").get("traces_included")->as_array()->get(0)->value<std::string>(), "+1");
  EXPECT_EQ(numbers(step("hst_dq").get("hst_flags")), (std::vector<double>{4096}));
  EXPECT_EQ(step("bkg_sky").get("path_to_Pagul")->value<std::string>(), "C:\\sky \"v1\"");
  // Missing switches: every step but plots is off.
  for (const auto& s : steps) {
    const std::string id = s.as_table()->get_as<std::string>("id")->get();
    EXPECT_EQ(s.as_table()->get("enabled")->value<bool>(), id == "plots") << id;
  }
  EXPECT_EQ(root["output"]["run"].value<std::string>(), "run_1");
}

TEST(HustleMapping, TableIsConsistent) {
  std::set<std::string> keys, sections = {"workflow", "input", "output"};
  for (const auto& slot : tessera::hustle::step_slots()) sections.insert(std::string(slot.id));
  for (const auto& rule : tessera::hustle::key_rules()) {
    EXPECT_TRUE(keys.insert(std::string(rule.key)).second) << "duplicate rule " << rule.key;
    EXPECT_FALSE(rule.targets.empty()) << rule.key;
    for (const auto& t : rule.targets) EXPECT_TRUE(sections.count(std::string(t.section))) << rule.key;
    if (rule.kind == tessera::hustle::ValueKind::StepSwitch) {
      ASSERT_EQ(rule.targets.size(), 1u);
      EXPECT_EQ(rule.targets[0].param, "enabled");
    }
  }
  for (const auto& slot : tessera::hustle::step_slots()) {
    if (slot.switch_key.empty()) continue;
    const auto* rule = tessera::hustle::find_rule(slot.switch_key);
    ASSERT_NE(rule, nullptr) << slot.switch_key;
    EXPECT_EQ(rule->targets[0].section, slot.id);
  }
  // Every key of both template variants has a rule.
  for (const char* name : {"hustle_tools_stage1.hustle", "exotic_uvis_stage1.hustle"})
    for (const auto& e : tessera::hustle::parse_hustle(read(fixture_path(name)), name).entries)
      EXPECT_NE(tessera::hustle::find_rule(e.key), nullptr) << e.key;
}

// ---------------------------------------------------------------------------------------------
// Against the registry (the steps' real parameters)
// ---------------------------------------------------------------------------------------------

/// Parameters the table maps to that the registry does not have (the table and a step disagree).
std::vector<std::string> missing_from_registry() {
  const auto& registry = tessera::builtin_registry();
  std::vector<std::string> missing;
  for (const auto& rule : tessera::hustle::key_rules())
    for (const auto& t : rule.targets) {
      if (t.param == "enabled" || t.section == "workflow" || t.section == "output" || t.section == "input") continue;
      const auto* step = registry.find_step(std::string(t.section));
      bool found = false;
      if (step)
        for (const auto& p : step->params) found = found || p.name == t.param;
      if (!found) missing.push_back(std::string(t.section) + "." + std::string(t.param));
    }
  return missing;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

TEST(HustleRegistry, TableAgreesWithStepParameters) {
  using tessera::hustle::ValueKind;
  const auto& registry = tessera::builtin_registry();
  for (const auto& rule : tessera::hustle::key_rules())
    for (const auto& t : rule.targets) {
      const tessera::ParamDoc* doc = nullptr;
      if (t.section == "input") {
        const auto* input = registry.find_input("hst_flt_dir");
        ASSERT_NE(input, nullptr);
        for (const auto& p : input->params)
          if (p.name == t.param) doc = &p;
        ASSERT_NE(doc, nullptr) << t.param;
      }
      if (const auto* step = registry.find_step(std::string(t.section)))
        for (const auto& p : step->params)
          if (p.name == t.param) doc = &p;
      if (!doc) continue;  // workflow/output sections, enabled, or not written yet
      const std::string where = std::string(t.section) + "." + std::string(t.param);
      const bool optional = doc->type.ends_with(" or \"none\"");
      const std::string base = optional ? doc->type.substr(0, doc->type.size() - 10) : doc->type;
      std::set<std::string> accepted;
      switch (rule.kind) {
        case ValueKind::Bool: accepted = {"a boolean"}; break;
        case ValueKind::Int: accepted = {"an integer", "a number"}; break;
        case ValueKind::Number: accepted = {"a number"}; break;
        case ValueKind::String: accepted = {"a string"}; break;
        case ValueKind::IntList: accepted = {"a list of integers", "a list of numbers"}; break;
        case ValueKind::NumberList: accepted = {"a list of numbers"}; break;
        case ValueKind::StringList: accepted = {"a list of strings"}; break;
        case ValueKind::BoxList: accepted = {"a list of lists of numbers"}; break;
        case ValueKind::Point: accepted = {"a list of numbers"}; break;
        case ValueKind::StepSwitch: break;
      }
      EXPECT_TRUE(accepted.count(base)) << where << " is " << doc->type;
      EXPECT_EQ(optional, rule.optional) << where << " is " << doc->type;
      if (optional) {
        EXPECT_EQ(doc->default_text == "unset", t.default_unset) << where << " defaults to " << doc->default_text;
      }
    }
  const auto missing = missing_from_registry();
  ASSERT_TRUE(missing.empty()) << "the .hustle table maps to parameters the registry lacks: " << join(missing);
}

TEST(HustleRegistry, ConvertedFixturesValidate) {
  const auto missing = missing_from_registry();
  ASSERT_TRUE(missing.empty()) << "the .hustle table maps to parameters the registry lacks: " << join(missing);
  for (const char* name : {"hustle_tools_stage1.hustle", "exotic_uvis_stage1.hustle", "unknown_keys.hustle"}) {
    const std::string path = fixture_path(name);
    const auto conversion = tessera::hustle::convert_text(read(path), path);
    for (const auto& p : tessera::hustle::check_converted(conversion, path, "converted.toml"))
      EXPECT_TRUE(p.data_dependent) << name << ": " << p.message;
  }
}

TEST(HustleRegistry, ValidationProblemsPointAtTheHustleLine) {
  // verbose 7 parses as an integer but is out of range for [workflow] verbose (0..2).
  const auto conversion = tessera::hustle::convert_text("toplevel_dir 'd'\n\nverbose 7\n", "v.hustle");
  const auto problems = tessera::hustle::check_converted(conversion, "v.hustle", "v.toml");
  bool found = false;
  for (const auto& p : problems)
    if (p.message.starts_with("v.hustle:3: [workflow] verbose:")) found = true;
  EXPECT_TRUE(found) << [&] {
    std::string all;
    for (const auto& p : problems) all += p.message + "\n";
    return all;
  }();
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

class ImportCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    // The test binaries and `tessera` share the build's bin/ directory.
    std::error_code ec;
    tessera_ = fs::read_symlink("/proc/self/exe", ec).parent_path() / "tessera";
    if (ec || !fs::exists(tessera_)) GTEST_SKIP() << "no tessera binary next to this test (" << tessera_ << ")";
  }
  std::pair<int, std::string> run(const std::string& args) {
    return tessera::testing::run_command(tessera_.string() + " import-hustle " + args);
  }
  fs::path tessera_;
  tessera::testing::TempDir dir_{"hustle_import"};
};

TEST_F(ImportCommand, WritesNextToTheFileAndRefusesToOverwrite) {
  const fs::path hustle = dir_.path() / "stage_1.hustle";
  fs::copy_file(fixture_path("unknown_keys.hustle"), hustle);
  auto [rc, out] = run(hustle.string() + " --no-check");
  ASSERT_EQ(rc, 0) << out;
  const fs::path toml_path = dir_.path() / "stage_1.toml";
  ASSERT_TRUE(fs::exists(toml_path));
  EXPECT_FALSE(fs::exists(toml_path.string() + ".partial"));
  EXPECT_NE(out.find("2 keys mapped, 2 unknown: do_corners (line 3), do_pagul (line 4)"), std::string::npos) << out;
  EXPECT_NE(out.find("warning: " + hustle.string() + ":3: unknown .hustle key 'do_corners'"), std::string::npos) << out;
  const std::string first = read(toml_path);
  EXPECT_NO_THROW(toml::parse(first));

  std::tie(rc, out) = run(hustle.string() + " --no-check");
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("already exists; use --force"), std::string::npos) << out;

  std::ofstream(hustle, std::ios::app) << "free_iter_extra 1\n";
  std::tie(rc, out) = run(hustle.string() + " --no-check --force");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(read(toml_path).find("free_iter_extra"), std::string::npos);
}

TEST_F(ImportCommand, OutputOptionAndErrors) {
  const fs::path out_path = dir_.path() / "wf.toml";
  auto [rc, out] = run(fixture_path("hustle_tools_stage1.hustle") + " --no-check -o " + out_path.string());
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("53 keys mapped, 0 unknown"), std::string::npos) << out;
  EXPECT_EQ(read(out_path), tessera::hustle::convert_text(read(fixture_path("hustle_tools_stage1.hustle")),
                                                          fixture_path("hustle_tools_stage1.hustle"))
                                .toml);

  // A malformed value: exit 2, file:line named, nothing written.
  const fs::path bad = dir_.path() / "bad.hustle";
  std::ofstream(bad) << "toplevel_dir 'd'\nfree_sigma 'abc'\n";
  std::tie(rc, out) = run(bad.string() + " --no-check");
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find(bad.string() + ":2: free_sigma: expected a number"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_.path() / "bad.toml"));

  std::ofstream(bad) << "toplevel_dir 'd'\nfree_sigma 3\nfree_sigma 4\n";
  std::tie(rc, out) = run(bad.string() + " --no-check");
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find(":3:1: key 'free_sigma' given twice (first at line 2)"), std::string::npos) << out;

  std::tie(rc, out) = run((dir_.path() / "missing.hustle").string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("cannot open"), std::string::npos) << out;
}

TEST_F(ImportCommand, ChecksTheResultUnlessAskedNot) {
  const fs::path bad = dir_.path() / "range.hustle";
  std::ofstream(bad) << "toplevel_dir 'd'\nverbose 7\n";
  auto [rc, out] = run(bad.string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find(bad.string() + ":2: [workflow] verbose"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_.path() / "range.toml"));

  const auto missing = missing_from_registry();
  ASSERT_TRUE(missing.empty()) << "the .hustle table maps to parameters the registry lacks: " << join(missing);
  const fs::path good = dir_.path() / "good.toml";
  std::tie(rc, out) = run(fixture_path("exotic_uvis_stage1.hustle") + " -o " + good.string());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(fs::exists(good));
}

}  // namespace
