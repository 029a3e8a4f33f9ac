// A counting allocator for the heap probe: malloc and friends are interposed in the probe's executable and
// forwarded to glibc's own implementations (__libc_malloc, …), counting the usable bytes of every live block.
// Linked only into `apt-heap-probe`, never into the library or the tools.
#pragma once
#include <stddef.h>

/// Bytes in live heap blocks now.
size_t apt_heap_current(void);
/// The largest `apt_heap_current()` since the last reset.
size_t apt_heap_peak(void);
/// Sets the peak to the current figure.
void apt_heap_reset_peak(void);
