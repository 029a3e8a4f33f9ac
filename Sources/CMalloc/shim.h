// glibc's heap statistics, which the Glibc Swift module does not export: for tests and tools that check a
// memory figure against what the C heap really holds.
#pragma once
#include <malloc.h>
#include <stddef.h>

/// Bytes the heap holds for the program now: small blocks in use plus mmapped large blocks (mallinfo2).
static inline size_t apt_heap_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
