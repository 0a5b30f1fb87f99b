#include "import_command.hpp"
