#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
