// Symbol export for the core-process shared library: everything is hidden unless marked.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define CORE_API __attribute__((visibility("default")))
#else
#define CORE_API
#endif
