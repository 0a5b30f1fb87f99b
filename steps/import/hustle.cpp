#include "steps/import/hustle.hpp"
