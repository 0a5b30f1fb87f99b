// Per-visit records (TOML, one per visit directory) and the survey index (CSV) built from them.
// The records are the truth: the index is only ever rebuilt from them, so it can be written
// again at any time (`tessera survey index`), e.g. after the tasks of a job array.
#include <toml++/toml.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "survey_detail.hpp"
#include "tessera/errors.hpp"

namespace tessera {
namespace survey_detail {
namespace {

namespace fs = std::filesystem;

std::string toml_double(double value) {
  std::ostringstream out;
  out << toml::value<double>(value);
  return out.str();
}

std::string number(const char* format, double value) {
  if (std::isnan(value)) return "nan";
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string one_line(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') continue;
    if (text[i] == '\n') {
      if (i + 1 < text.size()) out += "; ";
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw IoError(partial + ": cannot write");
  }
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec) throw IoError(path + ": cannot rename from " + partial + ": " + ec.message());
}

void write_record(const std::string& path, const VisitRecord& r) {
  std::ostringstream out;
  const auto text = [&](const char* key, const std::string& value) {
    out << key << " = " << toml_quoted(value) << "\n";
  };
  const auto integer = [&](const char* key, std::int64_t value) { out << key << " = " << value << "\n"; };
  out << "# Written by `tessera survey run` after each attempt at this visit.\n";
  text("id", r.id);
  text("input", r.input);
  text("output", r.output);
  text("status", r.status);
  text("message", r.message);
  out << "wall_s = " << toml_double(std::round(r.wall_s * 1000) / 1000) << "\n";  // ms is plenty
  integer("ranks", r.ranks);
  integer("group", r.group);
  integer("frames", r.frames);
  text("resumed_after", r.resumed_after);
  text("workflow_hash", r.workflow_hash);
  text("started_utc", r.started_utc);
  text("finished_utc", r.finished_utc);
  text("host", r.host);
  text("slurm_job_id", r.slurm_job_id);
  text("slurm_array_task_id", r.slurm_array_task_id);
  integer("attempt", r.attempt);
  out << "\n[figures]\n";
  for (const auto& [name, value] : r.figures) out << name << " = " << toml_double(value) << "\n";
  write_file_atomically(path, out.str());
}

std::optional<VisitRecord> read_record(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw IoError(SourcePos::from(e.source()).str() + ": unreadable survey record: " + std::string(e.description()));
  }
  VisitRecord r;
  const auto text = [&](const char* key) { return t[key].value_or(std::string()); };
  const auto integer = [&](const char* key) { return t[key].value_or(std::int64_t{0}); };
  r.id = text("id");
  r.input = text("input");
  r.output = text("output");
  r.status = text("status");
  r.message = text("message");
  r.wall_s = t["wall_s"].value_or(0.0);
  r.ranks = integer("ranks");
  r.group = integer("group");
  r.frames = integer("frames");
  r.resumed_after = text("resumed_after");
  r.workflow_hash = text("workflow_hash");
  r.started_utc = text("started_utc");
  r.finished_utc = text("finished_utc");
  r.host = text("host");
  r.slurm_job_id = text("slurm_job_id");
  r.slurm_array_task_id = text("slurm_array_task_id");
  r.attempt = integer("attempt");
  if (const toml::table* figures = t["figures"].as_table())
    for (const auto& [key, node] : *figures)
      r.figures.emplace_back(std::string(key.str()), node.value<double>().value_or(std::nan("")));
  return r;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string index_header(const std::vector<FigureSpec>& figures) {
  std::string header = "visit_id,status,input,output,wall_s,ranks,frames";
  for (const auto& f : figures) {
    header += ',';
    header += csv_field(f.name);
  }
  return header + ",resumed_after,attempt,slurm_job_id,slurm_array_task_id,started_utc,message";
}

std::string index_row(const Survey& survey, const SurveyVisit& visit, const std::optional<VisitRecord>& record,
                      const std::string& problem) {
  std::vector<std::string> fields = {visit.id, record ? record->status : "missing", visit.input,
                                     survey.visit_output(visit)};
  if (record) {
    fields.push_back(number("%.3f", record->wall_s));
    fields.push_back(std::to_string(record->ranks));
    fields.push_back(std::to_string(record->frames));
  } else {
    fields.insert(fields.end(), 3, "");
  }
  for (const auto& f : survey.figures) {
    std::string value;
    if (record)
      for (const auto& [name, v] : record->figures)
        if (name == f.name) value = number("%.10g", v);
    fields.push_back(value);
  }
  if (record) {
    fields.push_back(record->resumed_after);
    fields.push_back(std::to_string(record->attempt));
    fields.push_back(record->slurm_job_id);
    fields.push_back(record->slurm_array_task_id);
    fields.push_back(record->started_utc);
    fields.push_back(one_line(record->message));
  } else {
    fields.insert(fields.end(), 5, "");
    fields.push_back(one_line(problem));
  }
  std::string row;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) row += ',';
    row += csv_field(fields[i]);
  }
  return row;
}

}  // namespace survey_detail

std::size_t write_survey_index(const Survey& survey) {
  using namespace survey_detail;
  std::string text = index_header(survey.figures) + "\n";
  std::size_t not_complete = 0;
  for (const auto& visit : survey.visits) {
    std::optional<VisitRecord> record;
    std::string problem;
    try {
      record = read_record(survey.visit_record(visit));
    } catch (const IoError& e) {
      problem = e.what();  // listed as missing, with the reason
    }
    if (!record || record->status != "complete") ++not_complete;
    text += index_row(survey, visit, record, problem) + "\n";
  }
  std::error_code ec;
  std::filesystem::create_directories(survey.output, ec);
  if (ec) throw IoError(survey.output + ": cannot create the survey output directory: " + ec.message());
  write_file_atomically(survey.index_path(), text);
  return not_complete;
}

}  // namespace tessera
