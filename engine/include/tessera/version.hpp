#pragma once
namespace tessera {
/// Tessera's version, e.g. "0.1.0".
const char* version();
/// The git commit the build was configured from, or "unknown".
const char* git_commit();
}  // namespace tessera
