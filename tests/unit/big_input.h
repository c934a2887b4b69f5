/*
 * big_input: a read-only input of `n` bytes that costs 1 MiB of memory: one
 * 1 MiB memfd filled with `byte`, mapped again and again over a reserved
 * range. For tests of size bounds (a result or a string far past a cap)
 * without allocating what they are about.
 */
#ifndef MCP_SANDBOXD_TEST_BIG_INPUT_H
#define MCP_SANDBOXD_TEST_BIG_INPUT_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *big_input(size_t n, unsigned char byte)
{
    const size_t chunk = 1 << 20;
    size_t span = (n + chunk - 1) / chunk * chunk;
    int fd = memfd_create("big-input", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)chunk), 0);
    char *one = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(one != MAP_FAILED);
    memset(one, byte, chunk);
    char *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(base != MAP_FAILED);
    for (size_t off = 0; off < span; off += chunk)
        assert_true(mmap(base + off, chunk, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == base + off);
    munmap(one, chunk); /* the mappings keep the memfd's page alive */
    close(fd);
    return base;
}

/** Unmaps what big_input(n, ...) mapped. */
static void big_input_free(const char *base, size_t n)
{
    const size_t chunk = 1 << 20;
    munmap((void *)base, (n + chunk - 1) / chunk * chunk);
}

#endif
