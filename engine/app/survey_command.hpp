#pragma once
/// `tessera survey run|index SURVEY.toml ...`
#include <CLI/CLI.hpp>

#include <memory>

namespace tessera::app {

struct SurveyArgs;  // defined in survey_command.cpp
/// Adds the `survey` subcommand (with its own subcommands); `args` receives what it was given.
CLI::App* add_survey_command(CLI::App& app, std::shared_ptr<SurveyArgs>& args);
int survey_command(const SurveyArgs& args);

}  // namespace tessera::app
