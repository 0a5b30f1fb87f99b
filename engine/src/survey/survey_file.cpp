// The survey file: [survey], [[visit]] and [[visits]] tables → a checked Survey. Every
// problem is collected with its file:line:column and reported at once, like workflows.
#include <glob.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "survey_detail.hpp"
#include "tessera/errors.hpp"
#include "tessera/params.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using namespace survey_detail;

const std::vector<std::string> kTopLevelKeys = {"survey", "visit", "visits"};
/// Columns of the index that a figure must not shadow.
const std::vector<std::string> kFixedColumns = {"visit_id", "status", "input", "output", "wall_s", "ranks",
                                                "frames", "resumed_after", "attempt", "slurm_job_id",
                                                "slurm_array_task_id", "started_utc", "message"};

struct SurveySection {
  std::string name, workflow, output;
  std::string input_key = "input.path";
  std::int64_t group_size = 0;
  double memory_per_rank_gb = 2.0;
  double memory_factor = 4.0;
  std::vector<std::string> set;
  static Schema<SurveySection> schema() {
    return tessera::schema<SurveySection>(
        field(&SurveySection::name, "name", "Name of the survey, recorded in every visit's output", Required{}),
        field(&SurveySection::workflow, "workflow", "Workflow TOML run on every visit (relative to this file)",
              Required{}),
        field(&SurveySection::output, "output",
              "Survey output directory (relative to this file): OUTPUT/ID/ID.h5 per visit, OUTPUT/survey_index.csv",
              Required{}),
        field(&SurveySection::input_key, "input_key",
              "The --set key a visit's input fills, e.g. \"input.path\" or \"workflow.visit\""),
        field(&SurveySection::group_size, "group_size", "Ranks per group; 0: derived from the largest visit",
              Range::at_least(0)),
        field(&SurveySection::memory_per_rank_gb, "memory_per_rank_gb",
              "For group_size = 0: memory one rank may use (GiB)", Range::above(0)),
        field(&SurveySection::memory_factor, "memory_factor",
              "For group_size = 0: working memory of a visit / its input bytes", Range::above(0)),
        field(&SurveySection::set, "set", "Overrides (STEP.PARAM=VALUE) for every visit"));
  }
};

struct VisitTable {
  std::string id, input;
  std::vector<std::string> set;
  static Schema<VisitTable> schema() {
    return tessera::schema<VisitTable>(
        field(&VisitTable::id, "id", "Visit id: letters, digits, '.', '_', '-'", Required{}),
        field(&VisitTable::input, "input", "The visit's input (relative to this file)", Required{}),
        field(&VisitTable::set, "set", "Overrides for this visit only"));
  }
};

struct GlobTable {
  std::string glob;
  std::string id = "{name}";
  std::vector<std::string> set;
  static Schema<GlobTable> schema() {
    return tessera::schema<GlobTable>(
        field(&GlobTable::glob, "glob", "Pattern of input paths (relative to this file); one visit per match",
              Required{}),
        field(&GlobTable::id, "id", "Each match's id; {name} is the match's file or directory name, {stem} "
                                    "the name without its extension"),
        field(&GlobTable::set, "set", "Overrides for every match; {name} and {stem} are replaced"));
  }
};

std::string resolve(const fs::path& base, const std::string& path) {
  const fs::path p(path);
  if (p.is_absolute() || base.empty()) return p.lexically_normal().string();
  return (base / p).lexically_normal().string();
}

/// Each element of a `set` array must look like an override; checked here so that a typo
/// is a survey error at its line rather than a failure of every visit.
void check_overrides(const toml::table& table, const std::string& context, Diagnostics& diagnostics) {
  const toml::array* set = table["set"].as_array();
  if (!set) return;
  for (const auto& element : *set) {
    const auto* text = element.as_string();
    if (!text) continue;  // the schema reports the type
    const std::string& o = text->get();
    const auto eq = o.find('='), dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 >= eq)
      diagnostics.add(SourcePos::from(element.source()),
                      context + "set: '" + o + "': expected STEP.PARAM=VALUE (e.g. locate.location=[512, 130])");
  }
}

/// True when `inner` is `outer` or inside it (paths that need not exist).
bool is_within(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  const fs::path a = fs::weakly_canonical(inner, ec);
  const fs::path b = fs::weakly_canonical(outer, ec);
  if (ec) return false;
  auto i = a.begin();
  for (auto j = b.begin(); j != b.end(); ++j, ++i) {
    if (j->empty()) continue;  // trailing separator
    if (i == a.end() || *i != *j) return false;
  }
  return true;
}

}  // namespace

namespace survey_detail {

bool valid_visit_id(const std::string& id) {
  if (id.empty() || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string expand_match_placeholders(const std::string& pattern, const std::string& name, const std::string& stem) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 6, "{name}") == 0) {
      out += name;
      i += 6;
    } else if (pattern.compare(i, 6, "{stem}") == 0) {
      out += stem;
      i += 6;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  glob_t found{};
  // GLOB_MARK is not used: names come back without a trailing '/', as the user wrote them.
  const int status = ::glob(pattern.c_str(), 0, nullptr, &found);
  std::vector<std::string> paths;
  if (status == 0)
    for (std::size_t i = 0; i < found.gl_pathc; ++i) paths.emplace_back(found.gl_pathv[i]);
  ::globfree(&found);
  if (status != 0 && status != GLOB_NOMATCH) throw IoError("glob '" + pattern + "': cannot read the directories");
  // glob(3) sorts by the locale's collation; bytewise order is the same for everyone.
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::uintmax_t bytes_on_disk(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec) return 0;
  if (fs::is_regular_file(status)) return fs::file_size(path, ec);
  if (!fs::is_directory(status)) return 0;
  std::uintmax_t total = 0;
  for (fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (it->is_regular_file(entry_ec)) {
      const auto size = it->file_size(entry_ec);
      if (!entry_ec) total += size;
    }
  }
  return total;
}

std::string toml_quoted(const std::string& value) {
  std::ostringstream out;
  out << toml::value<std::string>(value);
  return out.str();
}

}  // namespace survey_detail

std::string Survey::visit_directory(const SurveyVisit& visit) const { return (fs::path(output) / visit.id).string(); }
std::string Survey::visit_output(const SurveyVisit& visit) const {
  return (fs::path(output) / visit.id / (visit.id + ".h5")).string();
}
std::string Survey::visit_record(const SurveyVisit& visit) const {
  return (fs::path(output) / visit.id / "survey_record.toml").string();
}
std::string Survey::visit_log(const SurveyVisit& visit) const {
  return (fs::path(output) / visit.id / (visit.id + ".log")).string();
}
std::string Survey::index_path() const { return (fs::path(output) / "survey_index.csv").string(); }

std::vector<std::string> Survey::visit_overrides(const SurveyVisit& visit) const {
  std::vector<std::string> all = overrides;
  all.insert(all.end(), visit.overrides.begin(), visit.overrides.end());
  // Quoted, so that an input named like a number or a boolean stays a path.
  all.push_back(input_key + "=" + toml_quoted(visit.input));
  all.push_back("output.path=" + toml_quoted(visit_output(visit)));
  return all;
}

Survey load_survey(const std::string& path, const std::vector<std::string>& extra_overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the survey file");
  std::stringstream buffer;
  buffer << in.rdbuf();

  const std::string text = buffer.str();
  Diagnostics diagnostics;
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    diagnostics.add(SourcePos::from(e.source()), "TOML syntax error: " + std::string(e.description()));
    diagnostics.throw_if_any();
  }

  Survey survey;
  survey.file = path;
  const fs::path base = fs::path(path).parent_path();

  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), name) != kTopLevelKeys.end()) continue;
    const std::string hint = closest_name(name, kTopLevelKeys);
    diagnostics.add(SourcePos::from(key.source()),
                    "unknown section '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
  }

  const toml::table* section = root["survey"].as_table();
  if (!section) {
    diagnostics.add(root.contains("survey") ? SourcePos::from(root["survey"].node()->source()) : SourcePos{path, 1, 1},
                    "missing [survey] table (name, workflow, output)");
  } else {
    const SurveySection s = SurveySection::schema().bind(*section, {"figures"}, diagnostics, "[survey] ");
    check_overrides(*section, "[survey] ", diagnostics);
    survey.name = s.name;
    survey.input_key = s.input_key;
    survey.group_size = s.group_size;
    survey.memory_per_rank_gb = s.memory_per_rank_gb;
    survey.memory_factor = s.memory_factor;
    survey.overrides = s.set;
    if (!s.workflow.empty()) {
      survey.workflow = resolve(base, s.workflow);
      std::error_code ec;
      if (!fs::is_regular_file(survey.workflow, ec))
        diagnostics.add(SourcePos::from(section->get("workflow")->source()),
                        "[survey] workflow: no such file '" + survey.workflow + "'");
    }
    if (!s.output.empty()) survey.output = resolve(base, s.output);
    const auto dot = survey.input_key.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == survey.input_key.size())
      diagnostics.add(SourcePos::from(section->contains("input_key") ? section->get("input_key")->source()
                                                                     : section->source()),
                      "[survey] input_key: expected SECTION.KEY (e.g. \"input.path\"), got '" + survey.input_key + "'");
    if (const toml::node* figures = section->get("figures")) {
      if (const toml::table* table = figures->as_table()) {
        // toml++ keeps a table's keys sorted; the index lists figures in file order.
        std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order;
        for (const auto& [key, node] : *table) in_file_order.emplace_back(&key, &node);
        std::sort(in_file_order.begin(), in_file_order.end(), [](const auto& a, const auto& b) {
          const auto &pa = a.first->source().begin, &pb = b.first->source().begin;
          return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
        });
        for (const auto& [key_pointer, node_pointer] : in_file_order) {
          const toml::key& key = *key_pointer;
          const toml::node& node = *node_pointer;
          const std::string name(key.str());
          const SourcePos where = SourcePos::from(node.source());
          const bool usable = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
          });
          if (!usable || std::find(kFixedColumns.begin(), kFixedColumns.end(), name) != kFixedColumns.end()) {
            diagnostics.add(SourcePos::from(key.source()),
                            "[survey.figures] '" + name + "': a figure needs a name of letters, digits and '_' "
                            "that is not one of the index's own columns");
            continue;
          }
          const auto* expression = node.as_string();
          if (!expression) {
            diagnostics.add(where, "[survey.figures] " + name + ": expected a string such as \"sum(VAR, ...)\"");
            continue;
          }
          FigureSpec spec{name, expression->get()};
          try {
            parse_figure(spec, where.str());
            survey.figures.push_back(spec);
          } catch (const ConfigError& e) {
            // parse_figure's message starts with the place we gave it; keep the rest.
            const std::string message = e.what();
            const std::string prefix = where.str() + ": ";
            diagnostics.add(where, "[survey.figures] " +
                                       (message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message));
          }
        }
      } else {
        diagnostics.add(SourcePos::from(figures->source()),
                        "[survey.figures] must be a table of NAME = \"REDUCTION(VAR, ...)\"");
      }
    }
  }
  survey.overrides.insert(survey.overrides.end(), extra_overrides.begin(), extra_overrides.end());

  std::map<std::string, SourcePos> seen_ids;
  auto add_visit = [&](SurveyVisit visit, const std::string& context) {
    if (!valid_visit_id(visit.id) || visit.id.rfind("survey_index", 0) == 0) {
      diagnostics.add(visit.where, context + "id '" + visit.id +
                                       "' cannot be a directory name: use letters, digits, '.', '_' and '-' (and "
                                       "not a name starting with survey_index)");
      return;
    }
    auto [it, fresh] = seen_ids.emplace(visit.id, visit.where);
    if (!fresh) {
      diagnostics.add(visit.where,
                      context + "duplicate visit id '" + visit.id + "' (first at " + it->second.str() + ")");
      return;
    }
    visit.input_bytes = bytes_on_disk(visit.input);
    survey.visits.push_back(std::move(visit));
  };

  auto tables = [&](const std::string& key, const std::string& form) -> std::vector<const toml::table*> {
    std::vector<const toml::table*> out;
    const toml::node* node = root.get(key);
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array || !array->is_array_of_tables()) {
      diagnostics.add(SourcePos::from(node->source()), key + " must be " + form + " tables");
      return out;
    }
    for (const auto& element : *array) out.push_back(element.as_table());
    return out;
  };

  std::size_t number = 0;
  for (const toml::table* table : tables("visit", "[[visit]]")) {
    const std::string context = "[[visit]] " + std::to_string(++number) + ": ";
    const std::size_t before = diagnostics.size();
    const VisitTable v = VisitTable::schema().bind(*table, {}, diagnostics, context);
    check_overrides(*table, context, diagnostics);
    if (diagnostics.size() != before) continue;
    SurveyVisit visit;
    visit.id = v.id;
    visit.input = resolve(base, v.input);
    visit.overrides = v.set;
    const toml::node* id = table->get("id");
    visit.where = SourcePos::from(id ? id->source() : table->source());
    add_visit(std::move(visit), context);
  }

  number = 0;
  for (const toml::table* table : tables("visits", "[[visits]]")) {
    const std::string context = "[[visits]] " + std::to_string(++number) + ": ";
    const std::size_t before = diagnostics.size();
    const GlobTable g = GlobTable::schema().bind(*table, {}, diagnostics, context);
    check_overrides(*table, context, diagnostics);
    if (diagnostics.size() != before) continue;
    const SourcePos where = SourcePos::from(table->get("glob")->source());
    std::vector<std::string> matches;
    try {
      matches = glob_paths(resolve(base, g.glob));
    } catch (const IoError& e) {
      diagnostics.add(where, context + e.what());
      continue;
    }
    // The survey's own output must never become a visit (e.g. glob "data/*", output "data/out").
    if (!survey.output.empty())
      matches.erase(std::remove_if(matches.begin(), matches.end(),
                                   [&](const std::string& m) { return is_within(m, survey.output); }),
                    matches.end());
    if (matches.empty()) {
      diagnostics.add(where, context + "glob '" + g.glob + "' matches nothing (looked for '" + resolve(base, g.glob) +
                                 "')");
      continue;
    }
    for (const auto& match : matches) {
      const fs::path m(match);
      const std::string name = m.filename().string();
      const std::string stem = m.stem().string();
      SurveyVisit visit;
      visit.id = expand_match_placeholders(g.id, name, stem);
      visit.input = match;
      for (const auto& o : g.set) visit.overrides.push_back(expand_match_placeholders(o, name, stem));
      visit.where = where;
      add_visit(std::move(visit), context + "match '" + match + "': ");
    }
  }

  if (section && survey.visits.empty() && diagnostics.empty())
    diagnostics.add(SourcePos{path, 1, 1}, "no visits: add [[visit]] tables (id, input) or [[visits]] globs");
  diagnostics.throw_if_any();
  return survey;
}

bool is_survey_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  try {
    const toml::table root = toml::parse(std::string_view(text), std::string_view(path));
    return root.contains("survey");
  } catch (const toml::parse_error& e) {
    throw ConfigError(SourcePos::from(e.source()).str() + ": TOML syntax error: " + std::string(e.description()));
  }
}

}  // namespace tessera
