#include "steps/common/gif_writer.hpp"
