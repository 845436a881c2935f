/* npy.h: reads the .npy files of examples/digits (float32 images, int32
 * labels) for digits_app.c; libc only. */
#ifndef NPY_H
#define NPY_H

#include <stddef.h>

/* The data of a little-endian .npy file (version 1 header) whose dtype is
 * descr ("<f4", "<i4") and whose items are elem_size bytes, or NULL; *count
 * is the number of items. Free with free(). */
void *npy_read(const char *path, const char *descr, size_t elem_size, size_t *count);

#endif
