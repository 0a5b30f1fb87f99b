#include "steps/import/hustle.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

#include "tessera/diagnostics.hpp"
#include "tessera/errors.hpp"
#include "tessera/registry.hpp"
#include "tessera/workflow.hpp"

namespace tessera::hustle {

// ---------------------------------------------------------------------------------------------
// PyValue
// ---------------------------------------------------------------------------------------------

PyValue PyValue::of_bool(bool b) {
  PyValue v;
  v.kind = Kind::Bool;
  v.boolean = b;
  return v;
}
PyValue PyValue::of_int(std::int64_t i) {
  PyValue v;
  v.kind = Kind::Int;
  v.integer = i;
  return v;
}
PyValue PyValue::of_float(double f) {
  PyValue v;
  v.kind = Kind::Float;
  v.real = f;
  return v;
}
PyValue PyValue::of_string(std::string s) {
  PyValue v;
  v.kind = Kind::String;
  v.text = std::move(s);
  return v;
}
PyValue PyValue::list(std::vector<PyValue> items) {
  PyValue v;
  v.kind = Kind::List;
  v.items = std::move(items);
  return v;
}
PyValue PyValue::tuple(std::vector<PyValue> items) {
  PyValue v;
  v.kind = Kind::Tuple;
  v.items = std::move(items);
  return v;
}

namespace {

/// Shortest text that reads back as the same double, always recognisable as a float
/// (Python repr and TOML both need a '.' or an exponent: 10.0, not 10).
std::string float_text(double f) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, f);
  std::string s(buffer, ec == std::errc() ? end : buffer);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // 'n': inf/nan (not reachable from literals)
  return s;
}

std::string python_string(const std::string& s) {
  const char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (char c : s) {
    if (c == '\\' || c == quote) out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + quote;
}

}  // namespace

std::string PyValue::repr() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return boolean ? "True" : "False";
    case Kind::Int: return std::to_string(integer);
    case Kind::Float: return float_text(real);
    case Kind::String: return python_string(text);
    case Kind::List:
    case Kind::Tuple: {
      std::string out = kind == Kind::List ? "[" : "(";
      for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i].repr();
      if (kind == Kind::Tuple && items.size() == 1) out += ",";
      return out + (kind == Kind::List ? "]" : ")");
    }
  }
  return "?";
}

std::string PyValue::describe() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "the boolean " + repr();
    case Kind::Int: return "the integer " + repr();
    case Kind::Float: return "the float " + repr();
    case Kind::String: return "the string " + repr();
    case Kind::List: return "the list " + repr();
    case Kind::Tuple: return "the tuple " + repr();
  }
  return repr();
}

// ---------------------------------------------------------------------------------------------
// Python literal parser (recursive descent over one line)
// ---------------------------------------------------------------------------------------------

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// range(...) results larger than this are refused (a typo such as range(10**9) would exhaust memory).
constexpr std::int64_t kMaxRangeLength = 1'000'000;

class LiteralParser {
 public:
  /// `where` prefixes messages ("file:line"); `column_base` is the 0-based column of text[0] in its line.
  LiteralParser(std::string_view text, std::string where, std::size_t column_base)
      : s_(text), where_(std::move(where)), base_(column_base) {}

  PyValue parse_all() {
    skip_blanks();
    if (at_end()) fail(pos_, "missing value");
    PyValue v = value();
    skip_blanks();
    if (!at_end()) fail(pos_, "unexpected '" + std::string(s_.substr(pos_, 12)) + "' after the value " + v.repr());
    return v;
  }

 private:
  [[noreturn]] void fail(std::size_t at, const std::string& message) const {
    throw ConfigError(where_ + ":" + std::to_string(base_ + at + 1) + ": " + message);
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void skip_blanks() {
    while (!at_end() && is_blank(s_[pos_])) ++pos_;
  }
  void expect(char c, const std::string& context) {
    skip_blanks();
    if (peek() != c) fail(pos_, "expected '" + std::string(1, c) + "' " + context);
    ++pos_;
  }
  std::string identifier() {
    const std::size_t start = pos_;
    while (!at_end() && is_ident_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  PyValue value() {
    skip_blanks();
    if (at_end()) fail(pos_, "missing value");
    const char c = peek();
    if (c == '-' || c == '+') {
      const std::size_t at = pos_++;
      PyValue v = value();
      if (!v.is_number()) fail(at, "unary '" + std::string(1, c) + "' applies to numbers, not to " + v.describe());
      if (c == '-') {
        if (v.kind == PyValue::Kind::Int) {
          if (v.integer == INT64_MIN) fail(at, "integer out of range");
          v.integer = -v.integer;
        } else {
          v.real = -v.real;
        }
      }
      return v;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek(1)))) return number();
    if (c == '\'' || c == '"') return strings();
    if (c == '[') return list_or_comprehension();
    if (c == '(') return tuple_or_group();
    if (is_ident_start(c)) return name();
    if (c == '{') fail(pos_, "dicts and sets are not supported in .hustle values");
    fail(pos_, "expected a Python literal (None, True, False, a number, a 'string', a [list] or (tuple), "
               "or [i for i in range(n)]), found '" + std::string(1, c) + "'");
  }

  PyValue number() {
    const std::size_t start = pos_;
    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'X' || peek(1) == 'o' || peek(1) == 'O' || peek(1) == 'b' ||
                          peek(1) == 'B'))
      fail(start, "hexadecimal, octal and binary integers are not supported; write the decimal value");
    std::string digits;
    bool is_float = false;
    auto take_digits = [&] {
      bool any = false;
      while (!at_end() && (is_digit(peek()) || (peek() == '_' && any && is_digit(peek(1))))) {
        if (peek() != '_') digits += peek();
        any = true;
        ++pos_;
      }
      return any;
    };
    take_digits();
    if (peek() == '.') {
      is_float = true;
      digits += '.';
      ++pos_;
      take_digits();
    }
    if (peek() == 'e' || peek() == 'E') {
      is_float = true;
      digits += 'e';
      ++pos_;
      if (peek() == '+' || peek() == '-') digits += s_[pos_++];
      if (!take_digits()) fail(pos_, "malformed number: missing exponent digits");
    }
    if (peek() == 'j' || peek() == 'J') fail(pos_, "complex numbers are not supported");
    if (is_ident_char(peek()))
      fail(start, "malformed number '" + std::string(s_.substr(start, pos_ - start + 1)) +
                      "' (strings need quotes: '" + std::string(s_.substr(start, pos_ - start + 1)) + "...')");
    if (is_float) {
      double f = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), f);
      if (ec == std::errc::result_out_of_range || (ec == std::errc() && !std::isfinite(f)))
        fail(start, "float out of range: " + digits);
      if (ec != std::errc() || end != digits.data() + digits.size()) fail(start, "malformed number: " + digits);
      return PyValue::of_float(f);
    }
    std::int64_t i = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
    if (ec == std::errc::result_out_of_range) fail(start, "integer out of range (64 bits): " + digits);
    if (ec != std::errc() || end != digits.data() + digits.size()) fail(start, "malformed number: " + digits);
    return PyValue::of_int(i);
  }

  /// One or more adjacent string literals ('a' 'b' is 'ab', as in Python).
  PyValue strings() {
    std::string out = string_literal();
    for (;;) {
      const std::size_t save = pos_;
      skip_blanks();
      if (peek() == '\'' || peek() == '"') {
        out += string_literal();
      } else {
        pos_ = save;
        break;
      }
    }
    return PyValue::of_string(std::move(out));
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::uint32_t hex_digits(std::size_t count) {
    std::uint32_t cp = 0;
    for (std::size_t k = 0; k < count; ++k) {
      const char h = peek();
      int d = -1;
      if (h >= '0' && h <= '9') d = h - '0';
      if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      if (d < 0) fail(pos_, "malformed escape: expected " + std::to_string(count) + " hexadecimal digits");
      cp = cp * 16 + static_cast<std::uint32_t>(d);
      ++pos_;
    }
    return cp;
  }

  std::string string_literal() {
    const std::size_t start = pos_;
    const char quote = s_[pos_++];
    if (peek() == quote && peek(1) == quote) fail(start, "triple-quoted strings are not supported in .hustle values");
    std::string out;
    for (;;) {
      if (at_end()) fail(start, std::string("unterminated string (no closing ") + quote + ")");
      const char c = s_[pos_++];
      if (c == quote) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail(start, std::string("unterminated string (no closing ") + quote + ")");
      const char e = s_[pos_++];
      switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'x': append_utf8(out, hex_digits(2)); break;
        case 'u': append_utf8(out, hex_digits(4)); break;
        case 'U': {
          const std::uint32_t cp = hex_digits(8);
          if (cp > 0x10FFFF) fail(pos_ - 10, "escape \\U beyond Unicode");
          append_utf8(out, cp);
          break;
        }
        default:
          // Python keeps an unknown escape as written ('C:\data' is C:\data).
          out += '\\';
          out += e;
      }
    }
  }

  /// After '[': a list, or the comprehension `[NAME for NAME in range(...)]`.
  PyValue list_or_comprehension() {
    ++pos_;  // '['
    skip_blanks();
    if (is_ident_start(peek())) {
      const std::size_t save = pos_;
      const std::string first = identifier();
      skip_blanks();
      if (identifier() == "for") return comprehension(save, first);
      pos_ = save;
    }
    std::vector<PyValue> items;
    for (;;) {
      skip_blanks();
      if (at_end()) fail(pos_, "unterminated list (no closing ])");
      if (peek() == ']') {
        ++pos_;
        return PyValue::list(std::move(items));
      }
      items.push_back(value());
      skip_blanks();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ']') {
        if (at_end()) fail(pos_, "unterminated list (no closing ])");
        fail(pos_, "expected ',' or ']' in a list, found '" + std::string(1, peek()) + "'");
      }
    }
  }

  PyValue comprehension(std::size_t start, const std::string& var) {
    const char* form = "only the comprehension [i for i in range(...)] is supported";
    skip_blanks();
    const std::string loop_var = identifier();
    if (loop_var != var) fail(start, form);
    skip_blanks();
    if (identifier() != "in") fail(start, form);
    skip_blanks();
    const std::size_t range_at = pos_;
    if (identifier() != "range") fail(range_at, form);
    PyValue v = range_call(range_at);
    skip_blanks();
    if (peek() != ']') fail(pos_, std::string(form) + " (no conditions or nested loops)");
    ++pos_;
    return v;
  }

  /// After the name `range`: `(stop)`, `(start, stop)` or `(start, stop, step)` with integers.
  PyValue range_call(std::size_t at) {
    expect('(', "after range");
    std::vector<std::int64_t> args;
    for (;;) {
      skip_blanks();
      if (peek() == ')' && !args.empty()) {
        ++pos_;
        break;
      }
      const std::size_t arg_at = pos_;
      PyValue a = value();
      if (a.kind != PyValue::Kind::Int) fail(arg_at, "range() takes integers, not " + a.describe());
      args.push_back(a.integer);
      skip_blanks();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == ')') {
        ++pos_;
        break;
      } else {
        fail(pos_, "expected ',' or ')' in range(...)");
      }
    }
    if (args.size() > 3) fail(at, "range() takes 1 to 3 integers");
    const std::int64_t start = args.size() == 1 ? 0 : args[0];
    const std::int64_t stop = args.size() == 1 ? args[0] : args[1];
    const std::int64_t step = args.size() == 3 ? args[2] : 1;
    if (step == 0) fail(at, "range() step must not be zero");
    // Length as Python computes it, in long double to stay clear of overflow.
    const long double span = static_cast<long double>(stop) - static_cast<long double>(start);
    const long double count = span / step > 0 ? std::ceil(span / step) : 0;
    if (count > kMaxRangeLength)
      fail(at, "range() of " + std::to_string(static_cast<long long>(count)) + " values is more than the " +
                   std::to_string(kMaxRangeLength) + " allowed");
    std::vector<PyValue> items;
    items.reserve(static_cast<std::size_t>(count));
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(count); ++k) items.push_back(PyValue::of_int(start + k * step));
    return PyValue::list(std::move(items));
  }

  /// After '(': the empty tuple, a parenthesised value, or a tuple.
  PyValue tuple_or_group() {
    const std::size_t start = pos_++;
    std::vector<PyValue> items;
    bool comma = false;
    for (;;) {
      skip_blanks();
      if (at_end()) fail(start, "unterminated tuple (no closing ))");
      if (peek() == ')') {
        ++pos_;
        if (items.size() == 1 && !comma) return std::move(items.front());  // (x) is just x
        return PyValue::tuple(std::move(items));
      }
      items.push_back(value());
      skip_blanks();
      if (peek() == ',') {
        comma = true;
        ++pos_;
      } else if (peek() != ')') {
        if (at_end()) fail(start, "unterminated tuple (no closing ))");
        fail(pos_, "expected ',' or ')' in a tuple, found '" + std::string(1, peek()) + "'");
      }
    }
  }

  PyValue name() {
    const std::size_t start = pos_;
    const std::string word = identifier();
    if (word == "None") return PyValue::none();
    if (word == "True") return PyValue::of_bool(true);
    if (word == "False") return PyValue::of_bool(false);
    if (word == "range") return range_call(start);
    if (word == "list" || word == "tuple") {
      expect('(', "after " + word);
      skip_blanks();
      const std::size_t inner_at = pos_;
      PyValue inner = value();
      expect(')', "to close " + word + "(...)");
      if (!inner.is_sequence()) fail(inner_at, word + "() of " + inner.describe() + " is not supported");
      inner.kind = word == "list" ? PyValue::Kind::List : PyValue::Kind::Tuple;
      return inner;
    }
    if ((word.size() == 1 || word.size() == 2) && (peek() == '\'' || peek() == '"'))
      fail(start, "string prefixes (r'', b'', f'') are not supported; write a plain 'string'");
    std::string hint;
    if (word == "true" || word == "TRUE") hint = "; did you mean True?";
    else if (word == "false" || word == "FALSE") hint = "; did you mean False?";
    else if (word == "none" || word == "null" || word == "NONE" || word == "nil") hint = "; did you mean None?";
    else hint = " (strings need quotes: '" + word + "')";
    fail(start, "unknown name '" + word + "'" + hint);
  }

  std::string_view s_;
  std::string where_;
  std::size_t base_;
  std::size_t pos_ = 0;
};

}  // namespace

PyValue parse_literal(std::string_view text, const std::string& where) {
  return LiteralParser(text, where, 0).parse_all();
}

// ---------------------------------------------------------------------------------------------
// .hustle lines
// ---------------------------------------------------------------------------------------------

namespace {

/// Position of the first '#' outside quotes, or npos. A backslash escapes the next character
/// inside a string, as in Python.
std::size_t comment_start(std::string_view line, std::size_t from) {
  char quote = 0;
  for (std::size_t i = from; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#') {
      return i;
    }
  }
  return std::string_view::npos;
}

bool is_endparse(std::string_view line, std::size_t hash) {
  std::size_t i = hash + 1;
  while (i < line.size() && is_blank(line[i])) ++i;
  std::size_t end = line.size();
  while (end > i && is_blank(line[end - 1])) --end;
  return line.substr(i, end - i) == "ENDPARSE";
}

}  // namespace

HustleFile parse_hustle(std::string_view text, const std::string& path) {
  HustleFile file;
  file.path = path;
  std::map<std::string, int> first_line;
  int line_no = 0;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 byte-order mark

    const std::string where = path + ":" + std::to_string(line_no);
    auto fail = [&](std::size_t column, const std::string& message) {
      throw ConfigError(where + ":" + std::to_string(column + 1) + ": " + message);
    };

    std::size_t i = 0;
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size()) continue;
    if (line[i] == '#') {
      if (is_endparse(line, i)) {
        file.endparse_line = line_no;
        break;
      }
      continue;
    }
    if (!is_ident_start(line[i])) fail(i, "expected a key name (letters, digits, '_') at the start of the line");
    const std::size_t key_at = i;
    while (i < line.size() && is_ident_char(line[i])) ++i;
    const std::string key(line.substr(key_at, i - key_at));
    if (i < line.size() && !is_blank(line[i]) && line[i] != '#') {
      if (line[i] == '=' || line[i] == ':') fail(i, "write 'key value' without '" + std::string(1, line[i]) + "'");
      fail(i, "expected a blank between the key '" + key + "' and its value");
    }
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size() || line[i] == '#') fail(key_at, "key '" + key + "' has no value");
    if (line[i] == '=' || line[i] == ':')
      fail(i, "write 'key value' without '" + std::string(1, line[i]) + "'");
    const std::size_t value_at = i;
    std::size_t value_end = comment_start(line, value_at);
    if (value_end == std::string_view::npos) value_end = line.size();
    while (value_end > value_at && is_blank(line[value_end - 1])) --value_end;
    const std::string_view value_text = line.substr(value_at, value_end - value_at);

    HustleEntry entry;
    entry.key = key;
    entry.line = line_no;
    entry.value_text = std::string(value_text);
    entry.value = LiteralParser(value_text, where, value_at).parse_all();
    auto [it, fresh] = first_line.emplace(key, line_no);
    if (!fresh)
      fail(key_at, "key '" + key + "' given twice (first at line " + std::to_string(it->second) + ")");
    file.entries.push_back(std::move(entry));
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// Mapping table
// ---------------------------------------------------------------------------------------------

const std::vector<StepSlot>& step_slots() {
  static const std::vector<StepSlot> slots = {
      {"hst_dq", "hst_dq", "do_hst_flags", "Pixels flagged by the HST pipeline (calwf3 DQ)"},
      {"fixed_iter", "fixed_iter", "do_fixed_iter", "Fixed-iteration temporal clipping"},
      {"free_iter", "free_iter", "do_free_iter", "Free-iteration temporal clipping"},
      {"led", "led", "do_led", "Laplacian edge detection (van Dokkum 2001)"},
      {"spatial_smooth", "spatial_smooth", "do_smooth", "Spatial smoothing"},
      {"bkg_uniform", "bkg_uniform", "do_uniform", "One background value per frame"},
      {"bkg_column", "bkg_column", "do_column", "Column-by-column background"},
      {"bkg_sky", "bkg_sky", "do_Pagul", "Scaled G280 sky image (Pagul et al. 2023)"},
      {"locate", "locate", "do_location", "The target's position in the direct image"},
      {"track_0th", "track_0th", "do_0thtracking", "0th-order tracking"},
      {"track_stars", "track_stars", "do_bkg_stars", "Background-star tracking"},
      {"quicklook", "quicklook", "do_quicklook", "Quicklook GIFs"},
      {"plots", "plots", "", "Diagnostic plots"},
  };
  return slots;
}

const std::vector<KeyRule>& key_rules() {
  using K = ValueKind;
  // key, targets, kind, optional (None allowed), promote_scalar, inner_size
  static const std::vector<KeyRule> rules = {
      {"toplevel_dir", {{"input", "path"}}, K::String},
      {"output_run", {{"output", "run"}}, K::String, true},
      {"verbose", {{"workflow", "verbose"}}, K::Int},
      {"show_plots", {{"output", "show_plots"}}, K::Int},
      {"save_plots", {{"output", "save_plots"}}, K::Int},
      {"skip_first_fm", {{"input", "skip_first_fm"}}, K::Bool},
      {"skip_first_or", {{"input", "skip_first_or"}}, K::Bool},

      {"do_hst_flags", {{"hst_dq", "enabled"}}, K::StepSwitch},
      {"hst_flags", {{"hst_dq", "hst_flags"}}, K::IntList, false, true},
      {"hst_replace", {{"hst_dq", "hst_replace"}}, K::Bool},

      {"do_fixed_iter", {{"fixed_iter", "enabled"}}, K::StepSwitch},
      {"fixed_sigmas", {{"fixed_iter", "fixed_sigmas"}}, K::NumberList, false, true},
      {"replacement", {{"fixed_iter", "replacement", true}}, K::Int, true},

      {"do_free_iter", {{"free_iter", "enabled"}}, K::StepSwitch},
      {"free_sigma", {{"free_iter", "free_sigma"}}, K::Number},

      {"do_led", {{"led", "enabled"}}, K::StepSwitch},
      {"led_threshold", {{"led", "led_threshold"}}, K::Number},
      {"led_factor", {{"led", "led_factor"}}, K::Int},
      {"led_n", {{"led", "led_n"}}, K::Int, true},
      {"fine_structure", {{"led", "fine_structure"}}, K::Bool},
      {"contrast_factor", {{"led", "contrast_factor"}}, K::Number},

      {"do_smooth", {{"spatial_smooth", "enabled"}}, K::StepSwitch},
      {"smth_type", {{"spatial_smooth", "smth_type"}}, K::String},
      {"smth_kernel", {{"spatial_smooth", "smth_kernel"}}, K::IntList, false, true},
      {"smth_threshold", {{"spatial_smooth", "smth_threshold"}}, K::Number},
      {"smth_bounds", {{"spatial_smooth", "smth_bounds"}}, K::BoxList, true, false, 4},

      {"do_uniform", {{"bkg_uniform", "enabled"}}, K::StepSwitch},
      {"fit", {{"bkg_uniform", "fit", true}}, K::String, true},
      {"bounds", {{"bkg_uniform", "bounds"}}, K::BoxList, true, false, 4},
      {"hist_min", {{"bkg_uniform", "hist_min"}}, K::Number, true},
      {"hist_max", {{"bkg_uniform", "hist_max"}}, K::Number, true},
      {"hist_bins", {{"bkg_uniform", "hist_bins"}}, K::Int},

      {"do_column", {{"bkg_column", "enabled"}}, K::StepSwitch},
      {"rows", {{"bkg_column", "rows"}}, K::IntList},
      {"mask_trace", {{"bkg_column", "mask_trace"}}, K::Bool},
      {"dist_from_trace", {{"bkg_column", "dist_from_trace"}}, K::Int},
      {"col_sigma", {{"bkg_column", "col_sigma"}}, K::Number},

      {"do_Pagul", {{"bkg_sky", "enabled"}}, K::StepSwitch},
      {"path_to_Pagul", {{"bkg_sky", "path_to_Pagul"}}, K::String},
      {"mask_parameter", {{"bkg_sky", "mask_parameter"}}, K::Number},
      {"smooth_fits", {{"bkg_sky", "smooth_fits"}}, K::Bool},
      {"smoothing_param", {{"bkg_sky", "smoothing_param"}}, K::Number},
      {"median_columns", {{"bkg_sky", "median_columns"}}, K::Bool},

      {"do_location", {{"locate", "enabled"}}, K::StepSwitch},
      {"do_0thtracking", {{"track_0th", "enabled"}}, K::StepSwitch},
      // The template's one `location` is both the start of the direct-image refinement and the
      // 0th-order guess; an unset location means "from the header" (locate) and "from locate" (track_0th).
      {"location", {{"locate", "location", true}, {"track_0th", "location"}}, K::Point, true},

      {"do_bkg_stars", {{"track_stars", "enabled"}}, K::StepSwitch},
      {"bkg_stars_loc", {{"track_stars", "bkg_stars_loc"}}, K::BoxList, false, false, 2},
      {"bkg_window", {{"track_stars", "bkg_window"}}, K::Int},

      {"do_quicklook", {{"quicklook", "enabled"}}, K::StepSwitch},
      {"traces_included", {{"quicklook", "traces_included"}}, K::StringList, false, true},
      {"include_hst_dq", {{"quicklook", "include_hst_dq"}}, K::Bool},

      {"do_save", {{"output", "save"}}, K::Bool},
  };
  return rules;
}

const KeyRule* find_rule(std::string_view key) {
  for (const auto& rule : key_rules())
    if (rule.key == key) return &rule;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------

namespace {

const char* kind_text(ValueKind kind, int inner_size) {
  switch (kind) {
    case ValueKind::Bool:
    case ValueKind::StepSwitch: return "True or False";
    case ValueKind::Int: return "an integer";
    case ValueKind::Number: return "a number";
    case ValueKind::String: return "a 'string'";
    case ValueKind::IntList: return "a list of integers";
    case ValueKind::NumberList: return "a list of numbers";
    case ValueKind::StringList: return "a list of 'strings'";
    case ValueKind::BoxList:
      return inner_size == 4 ? "a list of [r1, r2, c1, c2] boxes"
             : inner_size == 2 ? "a list of [x, y] positions"
                               : "a list of lists of numbers";
    case ValueKind::Point: return "an [x, y] position";
  }
  return "?";
}

std::optional<PyValue> as_int(const PyValue& v) {
  if (v.kind == PyValue::Kind::Int) return v;
  if (v.kind == PyValue::Kind::Float && std::isfinite(v.real) && v.real == std::floor(v.real) &&
      std::abs(v.real) < 9.0e15)
    return PyValue::of_int(static_cast<std::int64_t>(v.real));
  return std::nullopt;
}

std::optional<PyValue> as_number(const PyValue& v) {
  if (v.is_number()) return v;
  return std::nullopt;
}

std::optional<PyValue> as_string(const PyValue& v) {
  if (v.kind == PyValue::Kind::String) return v;
  return std::nullopt;
}

template <class Element>
std::optional<PyValue> as_list(const PyValue& v, Element&& element, std::size_t size = 0) {
  if (!v.is_sequence()) return std::nullopt;
  if (size && v.items.size() != size) return std::nullopt;
  std::vector<PyValue> items;
  for (const auto& item : v.items) {
    auto e = element(item);
    if (!e) return std::nullopt;
    items.push_back(std::move(*e));
  }
  return PyValue::list(std::move(items));
}

/// The value in the form the parameter takes (tuples as lists, integral floats as integers,
/// a promoted scalar as a one-element list), or nullopt when it does not fit.
std::optional<PyValue> normalise(const KeyRule& rule, const PyValue& v) {
  auto scalar_or_list = [&](auto&& element) -> std::optional<PyValue> {
    if (rule.promote_scalar && !v.is_sequence()) {
      auto e = element(v);
      if (!e) return std::nullopt;
      return PyValue::list({std::move(*e)});
    }
    return as_list(v, element);
  };
  switch (rule.kind) {
    case ValueKind::Bool:
    case ValueKind::StepSwitch:
      if (v.kind == PyValue::Kind::Bool) return v;
      return std::nullopt;
    case ValueKind::Int: return as_int(v);
    case ValueKind::Number: return as_number(v);
    case ValueKind::String: return as_string(v);
    case ValueKind::IntList: return scalar_or_list(as_int);
    case ValueKind::NumberList: return scalar_or_list(as_number);
    case ValueKind::StringList: return scalar_or_list(as_string);
    case ValueKind::BoxList:
      return as_list(v, [&](const PyValue& inner) {
        return as_list(inner, as_number, static_cast<std::size_t>(rule.inner_size));
      });
    case ValueKind::Point: return as_list(v, as_number, 2);
  }
  return std::nullopt;
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04X", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

/// TOML text of a normalised value (never None).
std::string toml_value(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::Bool: return v.boolean ? "true" : "false";
    case PyValue::Kind::Int: return std::to_string(v.integer);
    case PyValue::Kind::Float: return float_text(v.real);
    case PyValue::Kind::String: return toml_string(v.text);
    case PyValue::Kind::List:
    case PyValue::Kind::Tuple: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.items.size(); ++i) out += (i ? ", " : "") + toml_value(v.items[i]);
      return out + "]";
    }
    case PyValue::Kind::None: break;
  }
  return "\"none\"";
}

/// A comment may hold any text but control characters.
std::string comment_safe(std::string s) {
  for (char& c : s)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7F) c = '?';
  return s;
}

/// One `param = value` (or a commented line) to write into a section.
struct Assignment {
  std::string line;  ///< full TOML line (possibly a comment)
  int hustle_line = 0;
};

/// Builds the TOML text and remembers where each line came from.
class Writer {
 public:
  void line(const std::string& text, int hustle_line = 0) {
    ++line_no_;
    out_ += text;
    out_ += '\n';
    if (hustle_line > 0) origin_[line_no_] = hustle_line;
  }
  std::string text() const { return out_; }
  std::map<int, int> origins() const { return origin_; }

 private:
  std::string out_;
  int line_no_ = 0;
  std::map<int, int> origin_;
};

std::string file_stem(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  const auto dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

}  // namespace

Conversion convert(const HustleFile& file) {
  Conversion result;
  // section -> param -> assignment, filled in file order, written in table order.
  std::map<std::string, std::map<std::string, Assignment>, std::less<>> assigned;
  std::map<std::string, int, std::less<>> switch_line;  // step id -> line of its do_* key
  std::vector<std::string> known_keys;
  for (const auto& rule : key_rules()) known_keys.emplace_back(rule.key);

  for (const auto& entry : file.entries) {
    const KeyRule* rule = find_rule(entry.key);
    const std::string where = file.path + ":" + std::to_string(entry.line);
    if (!rule) {
      UnknownKey unknown{entry.key, entry.line, entry.value_text, closest_name(entry.key, known_keys)};
      result.warnings.push_back(where + ": unknown .hustle key '" + entry.key + "'" +
                                (unknown.suggestion.empty() ? "" : " (did you mean '" + unknown.suggestion + "'?)") +
                                "; not converted, kept as a comment in the workflow");
      result.unknown.push_back(std::move(unknown));
      continue;
    }
    result.mapped_keys.push_back(entry.key);
    const std::string original = entry.key + " " + comment_safe(entry.value_text);

    if (entry.value.kind == PyValue::Kind::None) {
      if (!rule->optional)
        throw ConfigError(where + ": " + entry.key + ": None is not allowed here (expected " +
                          kind_text(rule->kind, rule->inner_size) + ")");
      for (const auto& target : rule->targets) {
        std::string line;
        if (entry.key == "output_run")
          line = "run = \"run_1\"  # output_run = None in the .hustle: a run needs a name, \"run_1\" as in the template";
        else if (target.default_unset)
          line = "# " + std::string(target.param) + " = None in the .hustle: unset";
        else
          line = std::string(target.param) + " = \"none\"  # " + entry.key + " = None in the .hustle: unset";
        assigned[std::string(target.section)][std::string(target.param)] = {line, entry.line};
      }
      continue;
    }

    std::optional<PyValue> value = normalise(*rule, entry.value);
    if (!value)
      throw ConfigError(where + ": " + entry.key + ": expected " + kind_text(rule->kind, rule->inner_size) +
                        (rule->optional ? " or None" : "") + ", got " + entry.value.describe());
    std::string note;
    if (rule->promote_scalar && !entry.value.is_sequence()) note = "  # " + original + " in the .hustle";
    for (const auto& target : rule->targets) {
      if (rule->kind == ValueKind::StepSwitch) switch_line[std::string(target.section)] = entry.line;
      assigned[std::string(target.section)][std::string(target.param)] = {
          std::string(target.param) + " = " + toml_value(*value) + note, entry.line};
    }
  }

  // With do_location on, the template tracks the 0th order from the refined position, not from
  // `location`: track_0th's location stays unset so it uses locate's result.
  if (auto s = assigned.find("locate"); s != assigned.end())
    if (auto e = s->second.find("enabled"); e != s->second.end() && e->second.line.find("= true") != std::string::npos)
      if (auto t = assigned.find("track_0th"); t != assigned.end())
        if (auto l = t->second.find("location"); l != t->second.end() && l->second.line.rfind("location =", 0) == 0)
          l->second.line = "# " + l->second.line + "  (unset: do_location is on, so track_0th starts from locate's result)";

  auto take = [&](std::string_view section, std::string_view param) -> std::optional<Assignment> {
    auto s = assigned.find(section);
    if (s == assigned.end()) return std::nullopt;
    auto p = s->second.find(std::string(param));
    if (p == s->second.end()) return std::nullopt;
    return p->second;
  };
  const std::optional<Assignment> top = take("input", "path");
  if (!top)
    throw ConfigError(file.path + ": no toplevel_dir key: is this a stage-1 .hustle file? (toplevel_dir is the "
                                  "directory holding specimages/ and directimages/)");

  Writer w;
  const std::string stem = file_stem(file.path);
  w.line("# HST WFC3/UVIS stage 1, converted from " + comment_safe(file.path) + " by `tessera import-hustle`.");
  w.line("# Same structure as workflows/uvis_stage1.toml. Parameters the .hustle file does not set keep");
  w.line("# Tessera's defaults (`tessera steps KIND` lists them); a None is noted where it appears.");
  w.line("# Relative paths are taken from the directory `tessera run` starts in, as the Python tools took");
  w.line("# them from the one they ran in.");
  if (!result.unknown.empty()) {
    w.line("#");
    w.line("# Keys of the .hustle file that Tessera does not know (not converted):");
    for (const auto& u : result.unknown)
      w.line("# unknown .hustle key '" + u.key + "' (line " + std::to_string(u.line) + "): " + u.key + " = " +
                 comment_safe(u.value_text),
             u.line);
  }

  // Writes the assignments of `section` in table order (then "enabled" first for steps).
  auto write_params = [&](std::string_view section) {
    for (const auto& rule : key_rules())
      for (const auto& target : rule.targets)
        if (target.section == section && target.param != "enabled")
          if (auto a = take(section, target.param)) w.line(a->line, a->hustle_line);
  };

  w.line("");
  w.line("[workflow]");
  w.line("name = " + toml_string(stem));
  w.line("description = " + toml_string("HST WFC3/UVIS stage 1 (converted from " + file.path + ")"));
  write_params("workflow");

  w.line("");
  w.line("[input]");
  w.line("kind = \"hst_flt_dir\"");
  write_params("input");

  w.line("");
  w.line("[output]");
  if (auto run = take("output", "run")) {
    w.line(run->line, run->hustle_line);
  } else {
    w.line("run = \"run_1\"  # no output_run in the .hustle: the template's default");
  }
  w.line("path = \"{input.path}/outputs/stage1/{output.run}/clean_obs.h5\"");
  for (std::string_view param : {"save", "save_plots", "show_plots"})
    if (auto a = take("output", param)) w.line(a->line, a->hustle_line);

  for (const auto& slot : step_slots()) {
    w.line("");
    w.line("# " + std::string(slot.title));
    const auto sw = switch_line.find(slot.id);
    w.line("[[step]]", sw == switch_line.end() ? 0 : sw->second);
    w.line("id = " + toml_string(std::string(slot.id)));
    w.line("uses = " + toml_string(std::string(slot.uses)));
    if (slot.switch_key.empty()) {
      w.line("enabled = true  # diagnostic plots (save_plots chooses how many)");
    } else if (auto a = take(slot.id, "enabled")) {
      w.line(a->line, a->hustle_line);
    } else {
      w.line("enabled = false  # no " + std::string(slot.switch_key) + " in the .hustle");
    }
    write_params(slot.id);
  }

  result.toml = w.text();
  result.hustle_line = w.origins();
  return result;
}

Conversion convert_text(std::string_view text, const std::string& path) { return convert(parse_hustle(text, path)); }

// ---------------------------------------------------------------------------------------------
// Validation of the result
// ---------------------------------------------------------------------------------------------

std::vector<CheckProblem> check_converted(const Conversion& conversion, const std::string& hustle_path,
                                          const std::string& toml_path) {
  std::vector<CheckProblem> problems;
  try {
    (void)parse_workflow(conversion.toml, toml_path, {}, builtin_registry());
    return problems;
  } catch (const ConfigError& e) {
    std::istringstream lines(e.what());
    std::string line;
    const std::string prefix = toml_path + ":";
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      CheckProblem p{line, line.find("which neither the input") != std::string::npos};
      if (line.starts_with(prefix)) {
        // "toml_path:LINE:COLUMN: message"
        const std::size_t a = prefix.size();
        const std::size_t b = line.find(':', a);
        const std::size_t c = b == std::string::npos ? b : line.find(':', b + 1);
        if (c != std::string::npos) {
          int toml_line = 0;
          std::from_chars(line.data() + a, line.data() + b, toml_line);
          const auto origin = conversion.hustle_line.find(toml_line);
          std::string message = line.substr(c + 1);
          if (!message.empty() && message.front() == ' ') message.erase(0, 1);
          if (origin != conversion.hustle_line.end())
            p.message = hustle_path + ":" + std::to_string(origin->second) + ": " + message + " (" +
                        line.substr(0, c) + ")";
        }
      }
      problems.push_back(std::move(p));
    }
  }
  return problems;
}

}  // namespace tessera::hustle
