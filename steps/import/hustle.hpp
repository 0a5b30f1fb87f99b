#pragma once
/// `tessera import-hustle`: reads a stage-1 `.hustle` configuration file (ExoTiC-UVIS or
/// HUSTLE-tools) and writes the equivalent Tessera workflow.
///
/// A `.hustle` file has one `key value  # comment` per line; `#` starts a comment except
/// inside quotes; a comment line `# ENDPARSE` ends the file. Values are Python literals:
/// `True`, `False`, `None`, integers, floats, `'strings'` or `"strings"`, lists (nested,
/// trailing commas allowed), tuples, and `[i for i in range(a, b, step)]`.
///
/// ```cpp
/// auto file = tessera::hustle::parse_hustle(text, "configs/stage_1.hustle");   // syntax only
/// auto result = tessera::hustle::convert(file);   // table-driven mapping; throws ConfigError
/// std::cout << result.toml;
/// ```
/// Everything here is a pure function of its arguments (no MPI, no file access), except
/// `check_converted`, which validates the result against the step registry.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::hustle {

/// A Python literal value.
struct PyValue {
  enum class Kind { None, Bool, Int, Float, String, List, Tuple };
  Kind kind = Kind::None;
  bool boolean = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;             ///< String
  std::vector<PyValue> items;   ///< List, Tuple

  static PyValue none() { return {}; }
  static PyValue of_bool(bool b);
  static PyValue of_int(std::int64_t i);
  static PyValue of_float(double f);
  static PyValue of_string(std::string s);
  static PyValue list(std::vector<PyValue> items);
  static PyValue tuple(std::vector<PyValue> items);

  bool is_number() const { return kind == Kind::Int || kind == Kind::Float; }
  bool is_sequence() const { return kind == Kind::List || kind == Kind::Tuple; }
  double number() const { return kind == Kind::Int ? static_cast<double>(integer) : real; }
  /// Python's repr, e.g. `[1, 2.5, 'a', None]`, `('+1',)`.
  std::string repr() const;
  /// For messages: "the string 'abc'", "None", "a list [1, 2]".
  std::string describe() const;
  bool operator==(const PyValue&) const = default;
};

/// Parses one Python literal that fills the whole of `text` (surrounding blanks allowed).
/// Throws ConfigError "where:COLUMN: problem" (columns 1-based within `text`) on anything else.
PyValue parse_literal(std::string_view text, const std::string& where = "<literal>");

/// One `key value` line.
struct HustleEntry {
  std::string key;
  PyValue value;
  std::string value_text;  ///< the value as written (comment and surrounding blanks removed)
  int line = 0;            ///< 1-based
};

struct HustleFile {
  std::string path;                  ///< as given, for messages
  std::vector<HustleEntry> entries;  ///< in file order
  int endparse_line = 0;             ///< line of `# ENDPARSE` (0: none; the file ran to its end)
};

/// Splits a `.hustle` text into entries. Throws ConfigError "path:LINE:COLUMN: problem" for a
/// malformed line or value, and for a key given twice (naming the first line).
HustleFile parse_hustle(std::string_view text, const std::string& path);

/// What a value must be for its parameter.
enum class ValueKind {
  Bool,
  Int,
  Number,
  String,
  IntList,     ///< list or tuple of integers
  NumberList,  ///< list or tuple of numbers
  StringList,  ///< list or tuple of strings
  BoxList,     ///< list of [r1, r2, c1, c2] (or of [x, y] for star positions: see inner_size)
  Point,       ///< [x, y]
  StepSwitch,  ///< a do_* switch: a boolean, written as the step's `enabled`
};

/// Where a key goes: `section` is "workflow", "input", "output" or a step id.
struct Target {
  std::string_view section;
  std::string_view param;
  /// The parameter's default is unset, so a None is written by omitting it; otherwise a None
  /// must be written explicitly as `param = "none"` (e.g. led_n, whose default is 2).
  bool default_unset = false;
};

/// One row of the mapping table.
struct KeyRule {
  std::string_view key;          ///< the .hustle key
  std::vector<Target> targets;   ///< usually one; `location` feeds locate and track_0th
  ValueKind kind;
  bool optional = false;         ///< None is allowed (the parameter can be unset)
  bool promote_scalar = false;   ///< a single value is taken as a one-element list (smth_kernel 11 -> [11])
  int inner_size = 0;            ///< BoxList: entries per inner list (4 boxes, 2 positions; 0 any)
};

/// The mapping table, in template order.
const std::vector<KeyRule>& key_rules();
/// The rule for `key`, or nullptr.
const KeyRule* find_rule(std::string_view key);

/// A step of the converted workflow, in the order written (ids = kinds).
struct StepSlot {
  std::string_view id;
  std::string_view uses;
  std::string_view switch_key;  ///< the do_* key ("" for plots, always enabled)
  std::string_view title;       ///< comment line written above the step
};
const std::vector<StepSlot>& step_slots();

struct UnknownKey {
  std::string key;
  int line = 0;
  std::string value_text;
  std::string suggestion;  ///< closest known key, or ""
};

struct Conversion {
  std::string toml;                      ///< the workflow
  std::vector<std::string> mapped_keys;  ///< keys converted, file order
  std::vector<UnknownKey> unknown;       ///< keys not converted (written as comments)
  std::vector<std::string> warnings;     ///< "path:LINE: ..." lines for stderr (unknown keys)
  std::map<int, int> hustle_line;        ///< TOML line -> .hustle line it came from
};

/// Maps the entries to a workflow with the structure of workflows/uvis_stage1.toml. Values
/// of the wrong kind throw ConfigError "path:LINE: key: expected ..., got ...".
Conversion convert(const HustleFile& file);
/// parse_hustle + convert.
Conversion convert_text(std::string_view text, const std::string& path);

/// One problem found by validating the converted workflow.
struct CheckProblem {
  std::string message;   ///< "hustle_path:LINE: problem" where the line is known, else "toml_path:L:C: problem"
  bool data_dependent;   ///< depends on the data present under the input path (e.g. no direct image yet)
};
/// Validates `conversion.toml` with the built-in registry (as `tessera validate` would, without
/// reading data) and maps each problem back to its .hustle line.
std::vector<CheckProblem> check_converted(const Conversion& conversion, const std::string& hustle_path,
                                          const std::string& toml_path);

}  // namespace tessera::hustle
