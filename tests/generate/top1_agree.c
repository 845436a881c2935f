/* top1_agree.c: how often two runs' logits pick the same token.
 * usage: top1_agree A.npy B.npy FIRST_ROW MIN_FRACTION
 * Both are float32 [rows, vocabulary]; rows from FIRST_ROW on are compared
 * (the likeliest token of each, the lowest id on a tie). Prints the
 * fraction; exits 1 below MIN_FRACTION. */
#include <stdio.h>
#include <stdlib.h>

#include "rt.h"

static const float *load(const char *path, rt_mapped_file *f, rt_npy_header *h)
{
    char err[256];
    if (rt_file_map(path, f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f->data, f->size, h, err, sizeof err) != QMC_OK || h->rank != 2 ||
        h->dtype != QMC_DTYPE_F32) {
        fprintf(stderr, "top1_agree: %s: not float32 [rows, vocabulary] (%s)\n", path, err);
        exit(2);
    }
    return (const float *)((const char *)f->data + h->data_offset);
}

static long argmax(const float *row, long n)
{
    long best = 0;
    for (long i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc != 5) return fprintf(stderr, "usage: top1_agree A.npy B.npy FIRST_ROW MIN\n"), 2;
    rt_mapped_file fa, fb;
    rt_npy_header ha, hb;
    const float *a = load(argv[1], &fa, &ha), *b = load(argv[2], &fb, &hb);
    long first = atol(argv[3]), rows = (long)ha.shape[0], v = (long)ha.shape[1];
    if (hb.shape[0] != rows || hb.shape[1] != v || first < 0 || first >= rows)
        return fprintf(stderr, "top1_agree: the shapes differ or FIRST_ROW is out of range\n"), 2;
    long same = 0;
    for (long r = first; r < rows; r++) same += argmax(a + r * v, v) == argmax(b + r * v, v);
    double frac = (double)same / (double)(rows - first), min = atof(argv[4]);
    printf("top-1 agreement %ld/%ld = %.4f\n", same, rows - first, frac);
    return frac < min;
}
