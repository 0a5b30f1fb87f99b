#pragma once
// UNDER CONSTRUCTION (helper 'lightcurves' replaces this file).
