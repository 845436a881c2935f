/* threads.c: the worker pool behind qmc_parallel_for.
 *
 * Needs: Linux (futex), pthreads. qmc_set_num_threads is called outside the
 * run path; it creates the workers (and is the only place that allocates).
 * Guarantees: qmc_parallel_for(fn, ctx, n) splits [0, n) into
 * k = rt_chunk_count(n, threads) contiguous chunks, chunk i always being
 * [rt_chunk_begin(n, k, i), rt_chunk_begin(n, k, i + 1)), so the split
 * depends only on n and the thread count, and calls fn once on each. The
 * threads, the caller among them, take chunks as they become free, so
 * which thread runs a chunk varies (qmc's kernels compute every index the
 * same way whichever chunk holds it, so their results do not). It returns
 * when every chunk is done, with the writes of all of them visible. It
 * allocates nothing and takes no lock. A call from inside a chunk
 * (nested), from a second thread while the pool is busy, or with one
 * thread runs fn(ctx, 0, n) serially in the caller. qmc_set_num_threads
 * refuses to run inside a chunk (QMC_ERR_INVALID_ARGUMENT) and waits for a
 * dispatch in another thread. After fork() the child has one thread
 * (qmc_set_num_threads again for more).
 *
 * Protocol: the caller writes the job (fn, ctx, n) and `chunks_left`,
 * publishes the 64-bit word `claim` (generation, chunk count, next chunk)
 * and bumps `generation`, which wakes the workers; then every thread takes
 * chunks by compare-and-swap on `claim` (one still on an older generation
 * fails and waits for the next) and counts `chunks_left` down as it
 * finishes them; the caller returns when that reaches 0. A worker that
 * wakes late finds its share taken rather than holding the caller up (in
 * a virtual machine an idle vCPU can take longer to wake than a short
 * kernel takes to run: with static halves, a 4096x4096 int4 GEMV called
 * every 2 ms ran no faster on two threads than on one). Waiting threads
 * spin (RT_SPIN_NS, qmc_set_thread_spin_us), then sleep on a futex; the other side wakes them
 * only when a `sleepers` / `caller_waiting` flag says someone sleeps, so a
 * hot dispatch makes no system call. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt.h"

/* A waiting thread spins with `pause` for RT_PAUSE_NS (a hot dispatch is
 * seen within ~0.2 us), then calls sched_yield between checks, and sleeps
 * after spin_ns (qmc_set_thread_spin_us). The yields matter: a woken worker is often
 * placed on the core of the thread that woke it, and on a busy machine the
 * thread waited for may share a core; pure spinning would keep it off the
 * core. */
#define RT_PAUSE_NS 5000
#define RT_SWITCH_NS 1000 /* a sched_yield this long ran another thread */

static _Atomic uint64_t spin_ns = RT_SPIN_NS;

typedef void (*rt_task_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct rt_pool {
    /* written by the dispatching thread before it publishes `claim` */
    rt_task_fn fn;
    void *ctx;
    int64_t n;
    atomic_bool stop;   /* read by workers that may have seen no job since it was last written */
    pthread_t *workers; /* n_threads - 1 of them */
    _Atomic int n_threads;
    atomic_bool busy;                         /* held by a dispatch or a resize */
    _Alignas(64) _Atomic uint32_t generation; /* futex word of the workers */
    _Atomic uint32_t sleepers;
    _Alignas(64) _Atomic uint64_t claim;       /* see claim_word */
    _Alignas(64) _Atomic uint32_t chunks_left; /* futex word of the caller */
    _Atomic uint32_t caller_waiting;
} rt_pool;

static rt_pool pool = {.n_threads = 1};
static _Thread_local bool in_parallel; /* set in workers and in a dispatching caller */

static void futex_wait(_Atomic uint32_t *word, uint32_t value)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

/* Bounded spinning: spin_more pauses or yields once and says whether to go
 * on. A thread whose last wait gave its core away (a sched_yield took more
 * than RT_SWITCH_NS: another thread ran) starts the next wait yielding:
 * when it shares a core with the thread it waits for, a pause phase would
 * only delay that thread. */
typedef struct spinner {
    unsigned i;
    uint64_t start, last;
    bool yielding, gave_way;
} spinner;

static _Thread_local bool yield_first;

static spinner spin_begin(void) { return (spinner){.yielding = yield_first}; }

static bool spin_more(spinner *s)
{
    if (s->yielding || (++s->i & 63) == 0) {
        s->last = qmc_now_ns();
        if (!s->start) s->start = s->last;
        if (s->last - s->start > atomic_load_explicit(&spin_ns, memory_order_relaxed)) return false;
        if (s->last - s->start > RT_PAUSE_NS) s->yielding = true;
        if (s->yielding) {
            sched_yield();
            s->gave_way |= qmc_now_ns() - s->last > RT_SWITCH_NS;
            return true;
        }
    }
    cpu_relax();
    return true;
}

/* Remembers whether this wait gave the core to another thread. */
static void spin_end(const spinner *s) { yield_first = s->gave_way; }

int64_t rt_chunk_begin(int64_t n, int64_t n_chunks, int64_t i)
{
    int64_t q = n / n_chunks, r = n % n_chunks;
    return i * q + (i < r ? i : r);
}

int64_t rt_chunk_count(int64_t n, int threads)
{
    if (threads <= 1) return n > 0; /* serial: one call */
    int64_t most = (int64_t)threads * RT_CHUNKS_PER_THREAD;
    return n <= most ? n : most;
}

/* `claim`: the generation of the job (high 32 bits), its chunk count (16)
 * and the next chunk to take (low 16). */
_Static_assert(RT_MAX_THREADS *RT_CHUNKS_PER_THREAD <= 0xFFFF,
               "chunk counts must fit claim's 16-bit fields");

static uint64_t claim_word(uint32_t generation, int64_t n_chunks, int64_t next)
{
    return (uint64_t)generation << 32 | (uint64_t)n_chunks << 16 | (uint64_t)next;
}

/* Takes and runs chunks of the job of `generation` until none is left; for
 * any other generation returns at once. */
static void run_chunks(uint32_t generation)
{
    uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        int64_t n_chunks = (int64_t)(c >> 16 & 0xFFFF), next = (int64_t)(c & 0xFFFF);
        if ((uint32_t)(c >> 32) != generation || next >= n_chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        /* the job stays as it is until this chunk is counted done */
        int64_t begin = rt_chunk_begin(pool.n, n_chunks, next),
                end = rt_chunk_begin(pool.n, n_chunks, next + 1);
        pool.fn(pool.ctx, begin, end);
        /* seq_cst, as caller_waiting's store and load in wait_for_chunks:
         * either the caller sees 0 or this thread sees it waiting */
        if (atomic_fetch_sub(&pool.chunks_left, 1) == 1 && atomic_load(&pool.caller_waiting))
            futex_wake(&pool.chunks_left, 1);
        c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    }
}

/* A worker: waits for the generation to move past `seen`; returns the new one. */
static uint32_t wait_for_job(uint32_t seen)
{
    spinner s = spin_begin();
    uint32_t g;
    while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen)
        if (!spin_more(&s)) break;
    spin_end(&s);
    if (g != seen) return g;
    atomic_fetch_add(&pool.sleepers, 1);
    while ((g = atomic_load(&pool.generation)) == seen) futex_wait(&pool.generation, seen);
    atomic_fetch_sub(&pool.sleepers, 1);
    return g;
}

static void *worker_main(void *arg)
{
    uint32_t seen = *(uint32_t *)arg;
    free(arg);
    in_parallel = true;
    for (;;) {
        seen = wait_for_job(seen);
        if (pool.stop) return NULL;
        run_chunks(seen);
    }
}

/* The caller: waits until every chunk of its job is done. */
static void wait_for_chunks(void)
{
    spinner s = spin_begin();
    while (atomic_load_explicit(&pool.chunks_left, memory_order_acquire) != 0)
        if (!spin_more(&s)) break;
    spin_end(&s);
    if (atomic_load(&pool.chunks_left) == 0) return;
    atomic_store(&pool.caller_waiting, 1);
    uint32_t left;
    while ((left = atomic_load(&pool.chunks_left)) != 0) futex_wait(&pool.chunks_left, left);
    atomic_store(&pool.caller_waiting, 0);
}

static bool pool_try_acquire(void)
{
    bool expected = false;
    return atomic_compare_exchange_strong_explicit(&pool.busy, &expected, true,
                                                   memory_order_acquire, memory_order_relaxed);
}

static void pool_release(void) { atomic_store_explicit(&pool.busy, false, memory_order_release); }

/* Bumps the generation and wakes the sleeping workers. */
static uint32_t pool_wake_workers(void)
{
    uint32_t generation = atomic_fetch_add(&pool.generation, 1) + 1;
    if (atomic_load(&pool.sleepers) != 0) futex_wake(&pool.generation, INT_MAX);
    return generation;
}

/* The whole range in the calling thread; nested calls inside stay serial. */
static void run_serial(rt_task_fn fn, void *ctx, int64_t n)
{
    bool outer = in_parallel;
    in_parallel = true;
    fn(ctx, 0, n);
    in_parallel = outer;
}

void qmc_parallel_for(void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx, int64_t n)
{
    if (n <= 0) return;
    if (n == 1 || in_parallel || atomic_load_explicit(&pool.n_threads, memory_order_relaxed) == 1 ||
        !pool_try_acquire()) {
        run_serial(fn, ctx, n);
        return;
    }
    int64_t n_chunks =
        rt_chunk_count(n, atomic_load_explicit(&pool.n_threads, memory_order_relaxed));
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    atomic_store_explicit(&pool.chunks_left, (uint32_t)n_chunks, memory_order_relaxed);
    uint32_t generation = atomic_load_explicit(&pool.generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&pool.claim, claim_word(generation, n_chunks, 0), memory_order_release);
    pool_wake_workers();
    in_parallel = true;
    run_chunks(generation);
    wait_for_chunks();
    in_parallel = false;
    pool_release();
}

/* Stops and joins all workers; the pool must be held. */
static void pool_stop_workers(void)
{
    int workers = atomic_load(&pool.n_threads) - 1;
    if (workers > 0) {
        pool.stop = true;
        pool_wake_workers();
        for (int i = 0; i < workers; i++) pthread_join(pool.workers[i], NULL);
        pool.stop = false;
    }
    free(pool.workers);
    pool.workers = NULL;
    atomic_store(&pool.n_threads, 1);
}

static bool spawn_worker(pthread_t *thread)
{
    uint32_t *start = malloc(sizeof *start); /* the generation the worker has seen */
    if (!start) return false;
    *start = atomic_load(&pool.generation);
    if (pthread_create(thread, NULL, worker_main, start) != 0) {
        free(start);
        return false;
    }
    return true;
}

/* Starts n - 1 workers; the pool must be held and have none. On failure
 * the pool is left with none. Workers block every signal, so signals go to
 * the application's own threads. */
static qmc_status pool_start_workers(int n)
{
    pool.workers = malloc(sizeof(pthread_t) * (size_t)(n - 1));
    if (!pool.workers) return QMC_ERR_NO_MEMORY;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = 0;
    while (started < n - 1 && spawn_worker(&pool.workers[started])) started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store(&pool.n_threads, started + 1);
    if (started == n - 1) return QMC_OK;
    pool_stop_workers();
    return QMC_ERR_NO_MEMORY;
}

/* A forked child has only the thread that forked: it starts with no pool. */
static void pool_after_fork_child(void)
{
    pool.workers = NULL; /* the parent's array; the child cannot join those */
    atomic_store(&pool.n_threads, 1);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.busy, false);
    atomic_store(&pool.stop, false); /* forked while another thread resized the pool */
    atomic_store(&pool.caller_waiting, 0);
    in_parallel = false;
}

static void pool_register_fork(void) { pthread_atfork(NULL, NULL, pool_after_fork_child); }

qmc_status qmc_set_num_threads(int n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (n < 1 || n > RT_MAX_THREADS || in_parallel) return QMC_ERR_INVALID_ARGUMENT;
    pthread_once(&once, pool_register_fork);
    while (!pool_try_acquire()) sched_yield();
    qmc_status st = QMC_OK;
    if (n != atomic_load(&pool.n_threads)) {
        pool_stop_workers();
        if (n > 1) st = pool_start_workers(n);
    }
    pool_release();
    return st;
}

int qmc_get_num_threads(void)
{
    return atomic_load_explicit(&pool.n_threads, memory_order_relaxed);
}

qmc_status qmc_set_thread_spin_us(int us)
{
    if (us < 0 || us > RT_MAX_SPIN_US) return QMC_ERR_INVALID_ARGUMENT;
    atomic_store_explicit(&spin_ns, (uint64_t)us * 1000, memory_order_relaxed);
    return QMC_OK;
}

int qmc_get_thread_spin_us(void)
{
    return (int)(atomic_load_explicit(&spin_ns, memory_order_relaxed) / 1000);
}

int rt_pool_sleepers(void) { return (int)atomic_load(&pool.sleepers); }
