#include "heap_counter.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic size_t current_bytes = 0;
static _Atomic size_t peak_bytes = 0;

static void note_alloc(void *p) {
    if (!p) return;
    size_t now = atomic_fetch_add(&current_bytes, malloc_usable_size(p)) + malloc_usable_size(p);
    size_t peak = atomic_load(&peak_bytes);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {}
}

static void note_free(void *p) {
    if (p) atomic_fetch_sub(&current_bytes, malloc_usable_size(p));
}

void *malloc(size_t n) {
    void *p = __libc_malloc(n);
    note_alloc(p);
    return p;
}

void *calloc(size_t a, size_t b) {
    void *p = __libc_calloc(a, b);
    note_alloc(p);
    return p;
}

void *realloc(void *old, size_t n) {
    note_free(old);
    void *p = __libc_realloc(old, n);
    if (p) {
        note_alloc(p);
    } else if (old && n != 0) {
        note_alloc(old);  // the old block is still live
    }
    return p;
}

void free(void *p) {
    note_free(p);
    __libc_free(p);
}

void *memalign(size_t alignment, size_t n) {
    void *p = __libc_memalign(alignment, n);
    note_alloc(p);
    return p;
}

void *aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }

int posix_memalign(void **out, size_t alignment, size_t n) {
    void *p = __libc_memalign(alignment, n);
    if (!p) return ENOMEM;
    note_alloc(p);
    *out = p;
    return 0;
}

size_t apt_heap_current(void) { return atomic_load(&current_bytes); }
size_t apt_heap_peak(void) { return atomic_load(&peak_bytes); }
void apt_heap_reset_peak(void) { atomic_store(&peak_bytes, atomic_load(&current_bytes)); }
