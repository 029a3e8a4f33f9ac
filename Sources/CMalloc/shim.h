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

/// Keeps up to `trim` bytes of freed memory at the top of the heap instead of returning it to the kernel, and
/// serves blocks below `mmap_limit` bytes from the heap rather than from fresh mappings (mallopt
/// M_TRIM_THRESHOLD / M_MMAP_THRESHOLD; setting either fixes both, ending glibc's dynamic adjustment).
/// Returns 1 when both took effect.
static inline int apt_heap_keep(size_t trim, size_t mmap_limit) {
    int a = mallopt(M_TRIM_THRESHOLD, (int)trim);
    int b = mallopt(M_MMAP_THRESHOLD, (int)mmap_limit);
    return a == 1 && b == 1;
}
