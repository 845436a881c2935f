/* file.c: memory-mapped input files and atomic output files.
 *
 * Guarantees: rt_file_write_atomic either leaves the complete new file at
 * path or leaves path as it was (a temporary beside it is removed on every
 * failure path). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

static qmc_status io_fail(char *err, size_t err_size, const char *what, int errnum)
{
    if (err && err_size) snprintf(err, err_size, "%s: %s", what, strerror(errnum));
    return QMC_ERR_IO;
}

qmc_status rt_file_map(const char *path, rt_mapped_file *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_fail(err, err_size, "cannot open", errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return io_fail(err, err_size, "cannot stat", e);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return io_fail(err, err_size, "cannot read", EISDIR);
    }
    if (st.st_size == 0) {
        close(fd);
        return QMC_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return io_fail(err, err_size, "cannot map", e);
    out->data = p;
    out->size = (size_t)st.st_size;
    out->map_base = p;
    return QMC_OK;
}

void rt_file_unmap(rt_mapped_file *file)
{
    if (file->map_base) munmap(file->map_base, file->size);
    memset(file, 0, sizeof *file);
}

static bool write_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += n;
        size -= (size_t)n;
    }
    return true;
}

qmc_status rt_file_write_atomic(const char *path, const rt_write_piece *pieces, int n, char *err,
                                size_t err_size)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) {
        if (err && err_size) snprintf(err, err_size, "out of memory");
        return QMC_ERR_NO_MEMORY;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return io_fail(err, err_size, "cannot create", e);
    }
    bool ok = true;
    for (int i = 0; i < n && ok; i++) ok = write_all(fd, pieces[i].data, pieces[i].size);
    int e = errno;
    /* mkstemp creates 0600; give the file the usual permissions */
    mode_t mask = umask(0);
    umask(mask);
    if (ok && fchmod(fd, 0666 & ~mask) != 0) ok = false, e = errno;
    if (close(fd) != 0 && ok) ok = false, e = errno;
    if (ok && rename(tmp, path) != 0) ok = false, e = errno;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? QMC_OK : io_fail(err, err_size, "cannot write", e);
}
