#include "steps/common/png_plot.hpp"
