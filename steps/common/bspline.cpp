// UNDER CONSTRUCTION (helper 'trace' replaces this file).
