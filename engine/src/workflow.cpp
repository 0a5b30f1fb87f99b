#include "tessera/workflow.hpp"

#include <toml++/toml.h>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/topological_sort.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "tessera/errors.hpp"

namespace tessera {
namespace {

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

const std::vector<std::string> kTopLevelKeys = {"workflow", "input", "output", "engine", "step"};
const std::vector<std::string> kStepReservedKeys = {"id", "uses", "after", "enabled", "checkpoint"};

struct WorkflowSection {
  std::string name;
  std::string description;
  std::optional<std::int64_t> verbose;
  std::string visit;
  static Schema<WorkflowSection> schema() {
    return tessera::schema<WorkflowSection>(
        field(&WorkflowSection::name, "name", "Short name of the workflow, recorded in the output"),
        field(&WorkflowSection::description, "description", "One line saying what the workflow does"),
        field(&WorkflowSection::verbose, "verbose",
              "0 warnings only, 1 progress, 2 every action (per-rank detail); -q / -v on the command line win",
              Range::closed(0, 2)),
        field(&WorkflowSection::visit, "visit",
              "Directory of the visit, for {workflow.visit} placeholders in [input], [output] and step parameters"));
  }
};

Schema<OutputSettings> output_schema() {
  return tessera::schema<OutputSettings>(
      field(&OutputSettings::path, "path",
            "HDF5 file to write (as PATH.partial, renamed on success); may use {input.KEY}, {output.KEY}, "
            "{workflow.KEY} placeholders",
            Required{}),
      field(&OutputSettings::run, "run", "Name of this run, for the {output.run} placeholder (template: output_run)"),
      field(&OutputSettings::save, "save", "Write the HDF5 file (template: do_save)"),
      field(&OutputSettings::plots, "plots", "Directory for diagnostic plots, relative to the output file's directory"),
      field(&OutputSettings::save_plots, "save_plots", "Diagnostic plots to write: 0 none, 1 the main ones, 2 all",
            Range::closed(0, 2)),
      field(&OutputSettings::show_plots, "show_plots",
            "As save_plots (template compatibility): plots are written, never shown, so nothing blocks",
            Range::closed(0, 2)),
      field(&OutputSettings::copy_workflow, "copy_workflow",
            "Write the resolved workflow (every parameter) next to the output as OUTPUT_STEM.workflow.toml"));
}

/// Replaces {section.key} by the value of that key in the document (strings and integers).
std::string expand_placeholders(const std::string& text, const toml::table& root, const SourcePos& where,
                                Diagnostics& diagnostics) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto open = text.find('{', i);
    if (open == std::string::npos) break;
    const auto close = text.find('}', open);
    if (close == std::string::npos) break;
    out += text.substr(i, open - i);
    const std::string name = text.substr(open + 1, close - open - 1);
    const auto dot = name.find('.');
    const toml::node* node = nullptr;
    if (dot != std::string::npos) {
      const std::string section = name.substr(0, dot);
      if (section == "input" || section == "output" || section == "workflow")
        if (const auto* t = root[section].as_table()) node = t->get(name.substr(dot + 1));
    }
    if (node && node->is_string()) {
      out += node->as_string()->get();
    } else if (node && node->is_integer()) {
      out += std::to_string(node->as_integer()->get());
    } else {
      diagnostics.add(where, "placeholder {" + name + "}: no such string or integer key (use {input.KEY}, "
                             "{output.KEY} or {workflow.KEY})");
    }
    i = close + 1;
  }
  return out + text.substr(i);
}

bool has_placeholder(const std::string& text) {
  for (const char* section : {"{input.", "{output.", "{workflow."})
    if (text.find(section) != std::string::npos) return true;
  return false;
}

Schema<EngineSettings> engine_schema() {
  return tessera::schema<EngineSettings>(
      field(&EngineSettings::tile_ny, "tile_ny", "Pixel tile height for steps that need whole time series",
            Range::at_least(1)),
      field(&EngineSettings::tile_nx, "tile_nx", "Pixel tile width for steps that need whole time series",
            Range::at_least(1)),
      field(&EngineSettings::transpose_chunk_mb, "transpose_chunk_mb",
            "Upper bound (MiB) on each rank's send buffer in one all-to-all round of a transpose",
            Range::above(0)));
}

std::string key_of(DataKind kind, const std::string& name) { return to_string(kind) + " '" + name + "'"; }

/// Applies one --set override to the parsed document.
void apply_override(toml::table& root, const std::string& text, Diagnostics& diagnostics) {
  const SourcePos where{"--set " + text, 0, 0};
  const auto eq = text.find('=');
  const auto dot = text.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
    diagnostics.add(where, "expected STEP.PARAM=VALUE (e.g. clip.fixed_sigmas=[5,5])");
    return;
  }
  const std::string owner = text.substr(0, dot);
  const std::string key = text.substr(dot + 1, eq - dot - 1);
  const std::string value = text.substr(eq + 1);

  toml::table* target = nullptr;
  if (owner == "input" || owner == "output" || owner == "engine" || owner == "workflow") {
    if (!root.contains(owner)) root.insert(owner, toml::table{});
    target = root[owner].as_table();
  } else if (auto* steps = root["step"].as_array()) {
    for (auto& node : *steps) {
      auto* table = node.as_table();
      if (table && table->get_as<std::string>("id") && **table->get_as<std::string>("id") == owner) target = table;
    }
  }
  if (!target) {
    diagnostics.add(where, "no step with id '" + owner + "' to override");
    return;
  }
  // The value is TOML (a number, list, boolean, quoted string); a bare word is taken as a string.
  toml::table parsed;
  try {
    parsed = toml::parse(std::string_view("value = " + value), std::string_view("--set " + text));
  } catch (const toml::parse_error&) {
    parsed = toml::table{};
    parsed.insert("value", value);
  }
  // Moving (not copying) keeps the node's source, so errors point at the --set argument.
  parsed.get("value")->visit([&](auto&& node) { target->insert_or_assign(key, std::move(node)); });
}

std::vector<std::string> read_after(const toml::node& node, const std::string& context, Diagnostics& diagnostics) {
  std::vector<std::string> out;
  if (auto s = node.as_string()) {
    out.push_back(s->get());
  } else if (auto arr = node.as_array()) {
    for (const auto& e : *arr) {
      if (auto s2 = e.as_string())
        out.push_back(s2->get());
      else
        diagnostics.add(SourcePos::from(e.source()), context + "after: expected step ids (strings)");
    }
  } else {
    diagnostics.add(SourcePos::from(node.source()), context + "after: expected a step id or a list of step ids");
  }
  return out;
}

/// Finds one cycle (as step ids, first repeated at the end) by depth-first search.
std::vector<std::size_t> find_cycle(const Graph& graph) {
  const std::size_t n = boost::num_vertices(graph);
  std::vector<int> color(n, 0);  // 0 new, 1 on stack, 2 done
  std::vector<std::size_t> stack;
  std::vector<std::size_t> cycle;
  std::function<bool(std::size_t)> visit = [&](std::size_t v) {
    color[v] = 1;
    stack.push_back(v);
    for (auto [it, end] = boost::adjacent_vertices(v, graph); it != end; ++it) {
      const std::size_t w = *it;
      if (color[w] == 1) {
        auto start = std::find(stack.begin(), stack.end(), w);
        cycle.assign(start, stack.end());
        cycle.push_back(w);
        return true;
      }
      if (color[w] == 0 && visit(w)) return true;
    }
    stack.pop_back();
    color[v] = 2;
    return false;
  };
  for (std::size_t v = 0; v < n; ++v)
    if (color[v] == 0 && visit(v)) break;
  return cycle;
}

}  // namespace

Workflow parse_workflow(const std::string& text, const std::string& path, const std::vector<std::string>& overrides,
                        const Registry& registry) {
  Workflow wf;
  wf.file = path;
  wf.text = text;
  wf.overrides = overrides;
  Diagnostics diagnostics;

  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    diagnostics.add(SourcePos::from(e.source()), "TOML syntax error: " + std::string(e.description()));
    diagnostics.throw_if_any();
  }
  for (const auto& o : overrides) apply_override(root, o, diagnostics);

  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), name) != kTopLevelKeys.end()) continue;
    std::string hint = closest_name(name, kTopLevelKeys);
    diagnostics.add(SourcePos::from(key.source()),
                    "unknown section '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
  }

  auto section = [&](const std::string& name, bool required) -> const toml::table* {
    const toml::node* node = root.get(name);
    if (!node) {
      if (required) diagnostics.add(SourcePos{path, 1, 1}, "missing [" + name + "] section");
      return nullptr;
    }
    if (!node->is_table()) {
      diagnostics.add(SourcePos::from(node->source()), "[" + name + "] must be a table");
      return nullptr;
    }
    return node->as_table();
  };

  if (const auto* t = section("workflow", false)) {
    auto w = WorkflowSection::schema().bind(*t, {}, diagnostics, "[workflow] ");
    wf.name = w.name;
    wf.description = w.description;
    wf.verbose = w.verbose;
    wf.visit = w.visit;
  }
  if (const auto* t = section("output", true)) {
    wf.output = output_schema().bind(*t, {}, diagnostics, "[output] ");
    const toml::node* path_node = t->get("path");
    const SourcePos where = SourcePos::from(path_node ? path_node->source() : t->source());
    wf.output.path = expand_placeholders(wf.output.path, root, where, diagnostics);
    wf.output.plots = expand_placeholders(wf.output.plots, root, where, diagnostics);
    wf.output_path = wf.output.path;
  }
  if (const auto* t = section("engine", false)) wf.engine = engine_schema().bind(*t, {}, diagnostics, "[engine] ");

  if (const auto* t = section("input", true)) {
    const toml::node* kind = t->get("kind");
    if (!kind || !kind->is_string()) {
      diagnostics.add(SourcePos::from(kind ? kind->source() : t->source()),
                      "[input] kind: expected a string naming the input kind (one of: " +
                          [&] { std::string s; for (auto& n : registry.input_names()) s += (s.empty() ? "" : ", ") + n; return s; }() + ")");
    } else {
      wf.input_kind = kind->as_string()->get();
      const InputInfo* info = registry.find_input(wf.input_kind);
      if (!info) {
        std::string hint = closest_name(wf.input_kind, registry.input_names());
        diagnostics.add(SourcePos::from(kind->source()), "[input] kind: unknown input kind '" + wf.input_kind + "'" +
                                                              (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      } else {
        // Input strings may name the visit through [workflow] keys, e.g.
        // path = "{workflow.visit}/outputs/detector1/rateints.h5".
        // Copied only when needed: a copy loses source positions for later messages.
        bool any = false;
        for (auto&& [key, node] : *t)
          if (auto* value = node.as_string(); value && has_placeholder(value->get())) any = true;
        toml::table expanded;
        if (any) {
          expanded = *t;
          for (auto&& [key, node] : *t)
            if (auto* value = node.as_string(); value && has_placeholder(value->get()))
              *expanded[key].as_string() =
                  expand_placeholders(value->get(), root, SourcePos::from(node.source()), diagnostics);
        }
        wf.input = info->create(any ? expanded : *t, {"kind"}, diagnostics, "[input] ");
        if (wf.input) wf.input_provides = wf.input->provides();
      }
    }
  }

  // Steps.
  if (const toml::node* steps_node = root.get("step")) {
    const toml::array* steps = steps_node->as_array();
    if (!steps || !steps->is_array_of_tables()) {
      diagnostics.add(SourcePos::from(steps_node->source()), "steps must be [[step]] tables");
    } else {
      std::map<std::string, SourcePos> seen_ids;
      for (std::size_t i = 0; i < steps->size(); ++i) {
        const toml::table& table = *(*steps)[i].as_table();
        WorkflowStep step;
        step.where = SourcePos::from(table.source());
        const std::string fallback = "step " + std::to_string(i + 1);
        const toml::node* id = table.get("id");
        if (!id || !id->is_string() || id->as_string()->get().empty()) {
          diagnostics.add(SourcePos::from(id ? id->source() : table.source()),
                          fallback + ": missing 'id' (a unique name for this step)");
          step.id = "#" + std::to_string(i + 1);
        } else {
          step.id = id->as_string()->get();
          auto [it, fresh] = seen_ids.emplace(step.id, SourcePos::from(id->source()));
          if (!fresh)
            diagnostics.add(SourcePos::from(id->source()),
                            "duplicate step id '" + step.id + "' (first used at " + it->second.str() + ")");
        }
        const std::string context = "step '" + step.id + "': ";
        if (const toml::node* enabled = table.get("enabled")) {
          if (auto b = enabled->as_boolean())
            step.enabled = b->get();
          else
            diagnostics.add(SourcePos::from(enabled->source()), context + "enabled: expected a boolean");
        }
        if (const toml::node* checkpoint = table.get("checkpoint")) {
          if (auto b = checkpoint->as_boolean())
            step.checkpoint = b->get();
          else
            diagnostics.add(SourcePos::from(checkpoint->source()), context + "checkpoint: expected a boolean");
        }
        if (const toml::node* after = table.get("after"))
          step.after = read_after(*after, context, diagnostics);
        else if (i > 0)
          step.after = {wf.steps.back().id};

        const toml::node* uses = table.get("uses");
        if (!uses || !uses->is_string()) {
          diagnostics.add(SourcePos::from(uses ? uses->source() : table.source()),
                          context + "missing 'uses' (the step kind; see `tessera steps`)");
        } else {
          step.uses = uses->as_string()->get();
          step.info = registry.find_step(step.uses);
          if (!step.info) {
            std::string hint = closest_name(step.uses, registry.step_names());
            diagnostics.add(SourcePos::from(uses->source()), context + "unknown step kind '" + step.uses + "'" +
                                                                 (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
          } else {
            // String parameters may name other sections' keys, e.g. reference files next to the
            // input: "{input.path}/../refs/gain.fits".
            // A copy loses source positions, so the table is copied only when it has some.
            bool any = false;
            for (auto&& [key, node] : table)
              if (auto* value = node.as_string(); value && has_placeholder(value->get())) any = true;
            if (!any) {
              step.instance = step.info->create(table, kStepReservedKeys, diagnostics, context);
            } else {
              toml::table expanded = table;
              for (auto&& [key, node] : table)
                if (auto* value = node.as_string(); value && has_placeholder(value->get()))
                  *expanded[key].as_string() =
                      expand_placeholders(value->get(), root, SourcePos::from(node.source()), diagnostics);
              step.instance = step.info->create(expanded, kStepReservedKeys, diagnostics, context);
            }
          }
        }
        wf.steps.push_back(std::move(step));
      }
    }
  }

  // The DAG: an edge from each dependency to its dependent.
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < wf.steps.size(); ++i) index_of.emplace(wf.steps[i].id, i);
  Graph graph(wf.steps.size());
  if (const toml::array* steps = root["step"].as_array(); steps && steps->is_array_of_tables()) {
    std::vector<std::string> ids;
    for (const auto& s : wf.steps) ids.push_back(s.id);
    for (std::size_t i = 0; i < wf.steps.size(); ++i) {
      for (const auto& dep : wf.steps[i].after) {
        auto it = index_of.find(dep);
        if (it == index_of.end()) {
          const toml::node* after = (*steps)[i].as_table()->get("after");
          std::string hint = closest_name(dep, ids);
          diagnostics.add(after ? SourcePos::from(after->source()) : wf.steps[i].where,
                          "step '" + wf.steps[i].id + "': after: no step with id '" + dep + "'" +
                              (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
          continue;
        }
        boost::add_edge(it->second, i, graph);
      }
    }
  }

  std::vector<std::size_t> topological;
  try {
    std::vector<std::size_t> reversed;
    boost::topological_sort(graph, std::back_inserter(reversed));
    topological.assign(reversed.rbegin(), reversed.rend());
  } catch (const boost::not_a_dag&) {
    std::vector<std::size_t> cycle = find_cycle(graph);
    std::string text_cycle;
    for (std::size_t v : cycle) text_cycle += (text_cycle.empty() ? "" : " -> ") + wf.steps[v].id;
    diagnostics.add(cycle.empty() ? SourcePos{path, 1, 1} : wf.steps[cycle.front()].where,
                    "the steps' 'after' dependencies form a cycle: " + text_cycle);
  }

  // Every read must be provided by the input or by an enabled upstream step.
  if (diagnostics.empty() && wf.input) {
    std::vector<std::set<std::size_t>> ancestors(wf.steps.size());
    for (std::size_t v : topological)
      for (auto [it, end] = boost::inv_adjacent_vertices(v, graph); it != end; ++it) {
        ancestors[v].insert(*it);
        ancestors[v].insert(ancestors[*it].begin(), ancestors[*it].end());
      }
    std::set<std::string> from_input;
    for (const auto& p : wf.input_provides) from_input.insert(key_of(p.kind, p.info.name));
    for (std::size_t v : topological) {
      const WorkflowStep& step = wf.steps[v];
      if (!step.enabled) continue;
      std::set<std::string> available = from_input;
      for (std::size_t a : ancestors[v])
        if (wf.steps[a].enabled)
          for (const auto& w : wf.steps[a].instance->io().writes) available.insert(key_of(w.kind, w.info.name));
      for (const auto& r : step.instance->io().reads)
        if (!available.count(key_of(r.kind, r.name)))
          diagnostics.add(step.where, "step '" + step.id + "' (" + step.uses + ") reads " + key_of(r.kind, r.name) +
                                          ", which neither the input (" + wf.input_kind +
                                          ") nor any enabled upstream step provides" +
                                          (r.hint.empty() ? "" : "; " + r.hint));
      // A cube another step drops must be read before that step runs.
      for (std::size_t u : topological) {
        if (u == v || !wf.steps[u].enabled || ancestors[u].count(v)) continue;
        for (const auto& removed : wf.steps[u].instance->io().removes)
          for (const auto& r : step.instance->io().reads)
            if (r.kind == DataKind::Cube && r.name == removed)
              diagnostics.add(step.where, "step '" + step.id + "' (" + step.uses + ") reads cube '" + removed +
                                              "', which step '" + wf.steps[u].id + "' (" + wf.steps[u].uses +
                                              ") drops" + (ancestors[v].count(u) ? " before it" : "; run it first with 'after'"));
      }
      const auto phases = step.instance->phases();
      if (std::find(phases.begin(), phases.end(), Access::Pixels) != phases.end())
        for (const auto& w : step.instance->io().writes)
          if (w.kind == DataKind::FrameVector && w.combine != Combine::Identical &&
              from_input.count(key_of(w.kind, w.info.name)))
            diagnostics.add(step.where, "step '" + step.id + "' writes per-frame vector '" + w.info.name +
                                            "' from pixel tiles, where per-frame values are sums; it must be a new vector");
    }
  }

  diagnostics.throw_if_any();
  for (std::size_t v : topological)
    if (wf.steps[v].enabled) wf.order.push_back(v);
  return wf;
}

Workflow load_workflow(const std::string& path, const std::vector<std::string>& overrides, const Registry& registry) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the workflow file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_workflow(buffer.str(), path, overrides, registry);
}

std::string Workflow::resolved_toml() const {
  std::ostringstream out;
  auto quoted = [](const std::string& value) { return toml::value<std::string>(value); };
  out << "[workflow]\nname = " << quoted(name) << "\n";
  if (!description.empty()) out << "description = " << quoted(description) << "\n";
  if (verbose) out << "verbose = " << *verbose << "\n";
  if (!visit.empty()) out << "visit = " << quoted(visit) << "\n";
  out << "\n[input]\nkind = " << quoted(input_kind) << "\n";
  if (input)
    for (const auto& [k, v] : input->resolved_params) out << (v == "unset" ? "# " : "") << k << " = " << v << "\n";
  out << "\n[output]\n";
  for (const auto& [k, v] : output_schema().resolved(output)) out << k << " = " << v << "\n";
  out << "\n[engine]\n";
  for (const auto& [k, v] : engine_schema().resolved(engine)) out << k << " = " << v << "\n";
  for (const auto& step : steps) {
    out << "\n[[step]]\nid = \"" << step.id << "\"\nuses = \"" << step.uses << "\"\nenabled = "
        << (step.enabled ? "true" : "false") << (step.checkpoint ? "\ncheckpoint = true" : "") << "\nafter = [";
    for (std::size_t i = 0; i < step.after.size(); ++i) out << (i ? ", " : "") << '"' << step.after[i] << '"';
    out << "]\n";
    if (step.instance)
      for (const auto& [k, v] : step.instance->resolved_params()) out << (v == "unset" ? "# " : "") << k << " = " << v << "\n";
  }
  return out.str();
}

std::string workflow_dot(const Workflow& wf) {
  std::ostringstream dot;
  dot << "digraph \"" << (wf.name.empty() ? wf.file : wf.name) << "\" {\n  rankdir=TB;\n  node [shape=box];\n";
  dot << "  input [shape=cylinder, label=\"input\\n" << wf.input_kind << "\"];\n";
  dot << "  output [shape=cylinder, label=\"output\\n" << wf.output_path << "\"];\n";
  for (const auto& s : wf.steps) {
    const std::string access = s.instance ? to_string(s.instance->phases()) : "?";
    dot << "  \"" << s.id << "\" [label=\"" << s.id << "\\n" << s.uses << " (" << access << ")\""
        << (s.enabled ? "" : ", style=dashed") << "];\n";
  }
  for (const auto& s : wf.steps) {
    if (s.after.empty()) dot << "  input -> \"" << s.id << "\";\n";
    for (const auto& a : s.after) dot << "  \"" << a << "\" -> \"" << s.id << "\";\n";
  }
  std::set<std::string> has_dependents;
  for (const auto& s : wf.steps) has_dependents.insert(s.after.begin(), s.after.end());
  bool any = false;
  for (const auto& s : wf.steps)
    if (!has_dependents.count(s.id)) {
      dot << "  \"" << s.id << "\" -> output;\n";
      any = true;
    }
  if (!any) dot << "  input -> output;\n";
  dot << "}\n";
  return dot.str();
}

}  // namespace tessera

namespace tessera {

std::string OutputSettings::plots_directory() const {
  if (plot_level() == 0) return "";
  const std::filesystem::path dir(plots);
  if (dir.is_absolute()) return dir.string();
  return (std::filesystem::path(path).parent_path() / dir).string();
}

std::string OutputSettings::workflow_copy_path() const {
  const std::filesystem::path file(path);
  return (file.parent_path() / (file.stem().string() + ".workflow.toml")).string();
}

}  // namespace tessera
