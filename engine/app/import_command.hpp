#pragma once
/// UNDER CONSTRUCTION (placeholder so the build is wired).
