// UNDER CONSTRUCTION (helper 'lightcurves' replaces this file).
