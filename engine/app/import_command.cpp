#include "import_command.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "steps/import/hustle.hpp"
#include "tessera/errors.hpp"

namespace tessera::app {

namespace fs = std::filesystem;

CLI::App* add_import_command(CLI::App& app, ImportArgs& args) {
  auto* sub = app.add_subcommand("import-hustle",
                                 "Convert a stage-1 .hustle file (ExoTiC-UVIS / HUSTLE-tools) into a TOML workflow");
  sub->add_option("file", args.input, "The .hustle file")->required();
  sub->add_option("-o,--output", args.output, "Workflow to write (default: FILE with the extension .toml)");
  sub->add_flag("--force", args.force, "Overwrite the output if it exists");
  sub->add_flag("--no-check", args.no_check,
                "Write the workflow even if it does not validate against the registered steps");
  return sub;
}

namespace {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ConfigError(path + ": is a directory, not a .hustle file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the .hustle file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// Writes OUT.partial and renames it, so that a failed write never leaves a truncated workflow.
void write_atomically(const fs::path& out, const std::string& text) {
  const fs::path partial = out.string() + ".partial";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    if (!file) throw IoError(partial.string() + ": cannot create the file");
    file << text;
    file.flush();
    if (!file) throw IoError(partial.string() + ": write failed");
  }
  std::error_code ec;
  fs::rename(partial, out, ec);
  if (ec) {
    fs::remove(partial, ec);
    throw IoError(out.string() + ": cannot rename " + partial.string() + " to it: " + ec.message());
  }
}

}  // namespace

int import_command(const ImportArgs& args) {
  try {
    fs::path out = args.output.empty() ? fs::path(args.input).replace_extension(".toml") : fs::path(args.output);
    std::error_code ec;
    if (fs::exists(out, ec) && fs::equivalent(out, args.input, ec))
      throw ConfigError(out.string() + ": the output would replace the .hustle file itself; choose another with -o");

    const std::string text = read_file(args.input);
    const hustle::Conversion conversion = hustle::convert_text(text, args.input);
    for (const auto& w : conversion.warnings) std::fprintf(stderr, "tessera: warning: %s\n", w.c_str());

    if (fs::exists(out, ec) && !args.force)
      throw ConfigError(out.string() + ": already exists; use --force to overwrite it");

    if (!args.no_check) {
      const auto problems = hustle::check_converted(conversion, args.input, out.string());
      std::size_t blocking = 0;
      for (const auto& p : problems) {
        if (p.data_dependent) {
          std::fprintf(stderr, "tessera: warning: %s (depends on the data under toplevel_dir; check again with "
                               "`tessera validate` where the data are)\n", p.message.c_str());
        } else {
          std::fprintf(stderr, "tessera: error: %s\n", p.message.c_str());
          ++blocking;
        }
      }
      if (blocking > 0) {
        std::fprintf(stderr, "tessera: error: the converted workflow does not validate (%zu problem%s); nothing "
                             "written (--no-check writes it anyway)\n", blocking, blocking == 1 ? "" : "s");
        return static_cast<int>(ExitCode::invalid_workflow);
      }
    }

    if (out.has_parent_path() && !fs::exists(out.parent_path(), ec))
      throw IoError(out.parent_path().string() + ": no such directory");
    write_atomically(out, conversion.toml);

    std::string unknown;
    for (const auto& u : conversion.unknown)
      unknown += (unknown.empty() ? "" : ", ") + u.key + " (line " + std::to_string(u.line) + ")";
    std::printf("%s: wrote %s: %zu key%s mapped, %zu unknown%s%s\n", args.input.c_str(), out.string().c_str(),
                conversion.mapped_keys.size(), conversion.mapped_keys.size() == 1 ? "" : "s",
                conversion.unknown.size(), unknown.empty() ? "" : ": ", unknown.c_str());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
}

}  // namespace tessera::app
