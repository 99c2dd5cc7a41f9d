/* MD5 (RFC 1321) of many files at once, for DVC's version hashes (mlbuild/data/md5.py).
 *
 * One MD5 stream is a chain of dependent 32-bit operations, so one core hashes one file at
 * ~0.65 GB/s whatever the implementation. Independent files are not chained to each other: with
 * AVX2, eight files are hashed side by side, one in each 32-bit lane of the vector registers
 * ("multi-buffer" MD5), every step of RFC 1321 applied to the eight at once (with AVX-512VL, on
 * the same 256-bit registers, a rotation and each round's function are one instruction each
 * instead of three). Each step of the eight still waits on the step before it, so up to three
 * groups of eight files are hashed in one loop, their steps alternating: one group's
 * instructions run while the others' wait (2x the bytes a CPU second of one group). Each of up
 * to MAX_THREADS threads keeps 24 lanes busy: when a file ends, the lane takes the next file of
 * the batch; the busy lanes are hashed by the code of as few groups as hold them. When fewer
 * than SIMD_MIN_LANES lanes have work (the batch's tail, or a batch of one or two files), the
 * scalar code below, also used without AVX2, hashes them two streams at a time, alike
 * interleaved.
 *
 * The files are opened here with O_NONBLOCK and must be regular files (checked with fstat after
 * opening): a FIFO or a device is reported, never read, so hashing one cannot hang. The GIL is
 * released while files are read and hashed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define MD5X_X86 1
#else
#define MD5X_X86 0
#endif

/* lanes of one thread: up to three groups of eight, interleaved in one loop */
#define GROUP 8
#define GROUPS 3
#define LANES (GROUP * GROUPS)
/* bytes read at a time for one file (32 KiB read more often, and were no faster) */
#define LANE_BUFFER (64 * 1024)
#define MAX_THREADS 64
/* with fewer lanes busy than this, scalar code hashes them (two by two) */
#define SIMD_MIN_LANES 3
/* a result that is not an errno: the path is not a regular file */
#define NOT_REGULAR (-1)
/* a result not written yet (memory ran out before the file's turn) */
#define NOT_DONE (-2)

/* The 64 steps of RFC 1321 (section 3.4): the round's function, the rotation of the four
 * registers, the message word, the constant T[i] = floor(2^32 * abs(sin(i + 1))) and the shift. */
#define MD5_STEPS(X) \
    X(F, a, b, c, d,  0, 0xd76aa478U,  7) \
    X(F, d, a, b, c,  1, 0xe8c7b756U, 12) \
    X(F, c, d, a, b,  2, 0x242070dbU, 17) \
    X(F, b, c, d, a,  3, 0xc1bdceeeU, 22) \
    X(F, a, b, c, d,  4, 0xf57c0fafU,  7) \
    X(F, d, a, b, c,  5, 0x4787c62aU, 12) \
    X(F, c, d, a, b,  6, 0xa8304613U, 17) \
    X(F, b, c, d, a,  7, 0xfd469501U, 22) \
    X(F, a, b, c, d,  8, 0x698098d8U,  7) \
    X(F, d, a, b, c,  9, 0x8b44f7afU, 12) \
    X(F, c, d, a, b, 10, 0xffff5bb1U, 17) \
    X(F, b, c, d, a, 11, 0x895cd7beU, 22) \
    X(F, a, b, c, d, 12, 0x6b901122U,  7) \
    X(F, d, a, b, c, 13, 0xfd987193U, 12) \
    X(F, c, d, a, b, 14, 0xa679438eU, 17) \
    X(F, b, c, d, a, 15, 0x49b40821U, 22) \
    X(G, a, b, c, d,  1, 0xf61e2562U,  5) \
    X(G, d, a, b, c,  6, 0xc040b340U,  9) \
    X(G, c, d, a, b, 11, 0x265e5a51U, 14) \
    X(G, b, c, d, a,  0, 0xe9b6c7aaU, 20) \
    X(G, a, b, c, d,  5, 0xd62f105dU,  5) \
    X(G, d, a, b, c, 10, 0x02441453U,  9) \
    X(G, c, d, a, b, 15, 0xd8a1e681U, 14) \
    X(G, b, c, d, a,  4, 0xe7d3fbc8U, 20) \
    X(G, a, b, c, d,  9, 0x21e1cde6U,  5) \
    X(G, d, a, b, c, 14, 0xc33707d6U,  9) \
    X(G, c, d, a, b,  3, 0xf4d50d87U, 14) \
    X(G, b, c, d, a,  8, 0x455a14edU, 20) \
    X(G, a, b, c, d, 13, 0xa9e3e905U,  5) \
    X(G, d, a, b, c,  2, 0xfcefa3f8U,  9) \
    X(G, c, d, a, b,  7, 0x676f02d9U, 14) \
    X(G, b, c, d, a, 12, 0x8d2a4c8aU, 20) \
    X(H, a, b, c, d,  5, 0xfffa3942U,  4) \
    X(H, d, a, b, c,  8, 0x8771f681U, 11) \
    X(H, c, d, a, b, 11, 0x6d9d6122U, 16) \
    X(H, b, c, d, a, 14, 0xfde5380cU, 23) \
    X(H, a, b, c, d,  1, 0xa4beea44U,  4) \
    X(H, d, a, b, c,  4, 0x4bdecfa9U, 11) \
    X(H, c, d, a, b,  7, 0xf6bb4b60U, 16) \
    X(H, b, c, d, a, 10, 0xbebfbc70U, 23) \
    X(H, a, b, c, d, 13, 0x289b7ec6U,  4) \
    X(H, d, a, b, c,  0, 0xeaa127faU, 11) \
    X(H, c, d, a, b,  3, 0xd4ef3085U, 16) \
    X(H, b, c, d, a,  6, 0x04881d05U, 23) \
    X(H, a, b, c, d,  9, 0xd9d4d039U,  4) \
    X(H, d, a, b, c, 12, 0xe6db99e5U, 11) \
    X(H, c, d, a, b, 15, 0x1fa27cf8U, 16) \
    X(H, b, c, d, a,  2, 0xc4ac5665U, 23) \
    X(I, a, b, c, d,  0, 0xf4292244U,  6) \
    X(I, d, a, b, c,  7, 0x432aff97U, 10) \
    X(I, c, d, a, b, 14, 0xab9423a7U, 15) \
    X(I, b, c, d, a,  5, 0xfc93a039U, 21) \
    X(I, a, b, c, d, 12, 0x655b59c3U,  6) \
    X(I, d, a, b, c,  3, 0x8f0ccc92U, 10) \
    X(I, c, d, a, b, 10, 0xffeff47dU, 15) \
    X(I, b, c, d, a,  1, 0x85845dd1U, 21) \
    X(I, a, b, c, d,  8, 0x6fa87e4fU,  6) \
    X(I, d, a, b, c, 15, 0xfe2ce6e0U, 10) \
    X(I, c, d, a, b,  6, 0xa3014314U, 15) \
    X(I, b, c, d, a, 13, 0x4e0811a1U, 21) \
    X(I, a, b, c, d,  4, 0xf7537e82U,  6) \
    X(I, d, a, b, c, 11, 0xbd3af235U, 10) \
    X(I, c, d, a, b,  2, 0x2ad7d2bbU, 15) \
    X(I, b, c, d, a,  9, 0xeb86d391U, 21)

static const uint32_t IV[4] = {0x67452301U, 0xefcdab89U, 0x98badcfeU, 0x10325476U};

/* ---- one stream ---- */

#define SF(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define SG(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define SH(x, y, z) ((x) ^ (y) ^ (z))
#define SI(x, y, z) ((y) ^ ((x) | ~(z)))
#define SROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define SSTEP(f, a, b, c, d, i, k, s) \
    a += S##f(b, c, d) + m[i] + (k);  \
    a = SROTL(a, s) + b;

static inline uint32_t
load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void
md5_blocks(uint32_t st[4], const uint8_t *p, size_t nblocks)
{
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (; nblocks > 0; nblocks--, p += 64) {
        uint32_t m[16];
        for (int i = 0; i < 16; i++) {
            m[i] = load_le32(p + 4 * i);
        }
        uint32_t a0 = a, b0 = b, c0 = c, d0 = d;
        MD5_STEPS(SSTEP)
        a += a0;
        b += b0;
        c += c0;
        d += d0;
    }
    st[0] = a;
    st[1] = b;
    st[2] = c;
    st[3] = d;
}

/* two streams in one loop, their steps alternating: one stream's step fills the wait of the
 * other's dependency chain (2x the bytes a CPU second of md5_blocks) */
#define SSTEP2(f, a, b, c, d, i, k, s)                     \
    a##0 += S##f(b##0, c##0, d##0) + m0[i] + (k);          \
    a##1 += S##f(b##1, c##1, d##1) + m1[i] + (k);          \
    a##0 = SROTL(a##0, s) + b##0;                          \
    a##1 = SROTL(a##1, s) + b##1;

static void
md5_blocks2(uint32_t s0[4], const uint8_t *p0, uint32_t s1[4], const uint8_t *p1, size_t nblocks)
{
    uint32_t a0 = s0[0], b0 = s0[1], c0 = s0[2], d0 = s0[3];
    uint32_t a1 = s1[0], b1 = s1[1], c1 = s1[2], d1 = s1[3];
    for (; nblocks > 0; nblocks--, p0 += 64, p1 += 64) {
        uint32_t m0[16], m1[16];
        for (int i = 0; i < 16; i++) {
            m0[i] = load_le32(p0 + 4 * i);
            m1[i] = load_le32(p1 + 4 * i);
        }
        uint32_t sa0 = a0, sb0 = b0, sc0 = c0, sd0 = d0;
        uint32_t sa1 = a1, sb1 = b1, sc1 = c1, sd1 = d1;
        MD5_STEPS(SSTEP2)
        a0 += sa0;
        b0 += sb0;
        c0 += sc0;
        d0 += sd0;
        a1 += sa1;
        b1 += sb1;
        c1 += sc1;
        d1 += sd1;
    }
    s0[0] = a0;
    s0[1] = b0;
    s0[2] = c0;
    s0[3] = d0;
    s1[0] = a1;
    s1[1] = b1;
    s1[2] = c1;
    s1[3] = d1;
}

/* ---- 8, 16 or 24 streams in the lanes of AVX2 registers ---- */

#if MD5X_X86
#define VADD(x, y) _mm256_add_epi32(x, y)
#define VXOR(x, y) _mm256_xor_si256(x, y)
#define VF(x, y, z) VXOR(z, _mm256_and_si256(x, VXOR(y, z)))
#define VG(x, y, z) VXOR(y, _mm256_and_si256(z, VXOR(x, y)))
#define VH(x, y, z) VXOR(VXOR(x, y), z)
#define VI(x, y, z) VXOR(y, _mm256_or_si256(x, VXOR(z, ones)))
#define VROTL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
#define VSTEP(f, a, b, c, d, w, k, s)                                                     \
    a = VADD(VADD(a, VADD(w, _mm256_set1_epi32((int)(k)))), V##f(b, c, d));               \
    a = VADD(VROTL(a, s), b);

/* m[base + j] = word j of the 32 bytes at each lane's q: an 8x8 transpose of 32-bit words */
#define TRANSPOSE8(m, q, base)                                                            \
    do {                                                                                  \
        __m256i r0 = _mm256_loadu_si256((const __m256i *)(q)[0]);                         \
        __m256i r1 = _mm256_loadu_si256((const __m256i *)(q)[1]);                         \
        __m256i r2 = _mm256_loadu_si256((const __m256i *)(q)[2]);                         \
        __m256i r3 = _mm256_loadu_si256((const __m256i *)(q)[3]);                         \
        __m256i r4 = _mm256_loadu_si256((const __m256i *)(q)[4]);                         \
        __m256i r5 = _mm256_loadu_si256((const __m256i *)(q)[5]);                         \
        __m256i r6 = _mm256_loadu_si256((const __m256i *)(q)[6]);                         \
        __m256i r7 = _mm256_loadu_si256((const __m256i *)(q)[7]);                         \
        __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1);   \
        __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3);   \
        __m256i t4 = _mm256_unpacklo_epi32(r4, r5), t5 = _mm256_unpackhi_epi32(r4, r5);   \
        __m256i t6 = _mm256_unpacklo_epi32(r6, r7), t7 = _mm256_unpackhi_epi32(r6, r7);   \
        __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);   \
        __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);   \
        __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);   \
        __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);   \
        (m)[(base) + 0] = _mm256_permute2x128_si256(u0, u4, 0x20);                        \
        (m)[(base) + 1] = _mm256_permute2x128_si256(u1, u5, 0x20);                        \
        (m)[(base) + 2] = _mm256_permute2x128_si256(u2, u6, 0x20);                        \
        (m)[(base) + 3] = _mm256_permute2x128_si256(u3, u7, 0x20);                        \
        (m)[(base) + 4] = _mm256_permute2x128_si256(u0, u4, 0x31);                        \
        (m)[(base) + 5] = _mm256_permute2x128_si256(u1, u5, 0x31);                        \
        (m)[(base) + 6] = _mm256_permute2x128_si256(u2, u6, 0x31);                        \
        (m)[(base) + 7] = _mm256_permute2x128_si256(u3, u7, 0x31);                        \
    } while (0)

/* m[j] = message word j of block n of each of the eight streams at p[0..7] */
#define LOAD_BLOCK(m, p, n)                                                               \
    do {                                                                                  \
        const uint8_t *q[GROUP];                                                          \
        for (int j = 0; j < GROUP; j++) {                                                 \
            q[j] = (p)[j] + 64 * (n);                                                     \
        }                                                                                 \
        TRANSPOSE8(m, q, 0);                                                              \
        for (int j = 0; j < GROUP; j++) {                                                 \
            q[j] += 32;                                                                   \
        }                                                                                 \
        TRANSPOSE8(m, q, 8);                                                              \
    } while (0)

/* st[register][lane]; p[lane] points at nblocks blocks of that lane's stream. A kernel of g
 * groups hashes lanes 0 to 8g - 1: g groups of eight whose steps alternate. One group's step
 * waits on its previous step (a chain of four dependent instructions); the other groups' steps
 * fill that wait (per CPU second, two groups hash 1.7x the blocks of one, three 2x) */
typedef void (*blocks_fn)(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks);

/* the step of one group (registers a, b, c, d; message words m), or of both (a0... and a1...) */
#define STEP1(STEP, f, a, b, c, d, i, k, s) STEP(f, a, b, c, d, m[i], k, s)
#define STEP2(STEP, f, a, b, c, d, i, k, s)                                               \
    STEP(f, a##0, b##0, c##0, d##0, m0[i], k, s)                                          \
    STEP(f, a##1, b##1, c##1, d##1, m1[i], k, s)
#define STEP3(STEP, f, a, b, c, d, i, k, s)                                               \
    STEP2(STEP, f, a, b, c, d, i, k, s)                                                   \
    STEP(f, a##2, b##2, c##2, d##2, m2[i], k, s)
#define VSTEP1(...) STEP1(VSTEP, __VA_ARGS__)
#define VSTEP2(...) STEP2(VSTEP, __VA_ARGS__)
#define VSTEP3(...) STEP3(VSTEP, __VA_ARGS__)
#define WSTEP1(...) STEP1(WSTEP, __VA_ARGS__)
#define WSTEP2(...) STEP2(WSTEP, __VA_ARGS__)
#define WSTEP3(...) STEP3(WSTEP, __VA_ARGS__)

#define LOAD_STATE(a, b, c, d, lane)                                                      \
    __m256i a = _mm256_loadu_si256((const __m256i *)(st[0] + (lane)));                    \
    __m256i b = _mm256_loadu_si256((const __m256i *)(st[1] + (lane)));                    \
    __m256i c = _mm256_loadu_si256((const __m256i *)(st[2] + (lane)));                    \
    __m256i d = _mm256_loadu_si256((const __m256i *)(st[3] + (lane)));
#define STORE_STATE(a, b, c, d, lane)                                                     \
    _mm256_storeu_si256((__m256i *)(st[0] + (lane)), a);                                  \
    _mm256_storeu_si256((__m256i *)(st[1] + (lane)), b);                                  \
    _mm256_storeu_si256((__m256i *)(st[2] + (lane)), c);                                  \
    _mm256_storeu_si256((__m256i *)(st[3] + (lane)), d);
#define ADD_STATE(a, b, c, d, sa, sb, sc, sd)                                             \
    a = VADD(a, sa);                                                                      \
    b = VADD(b, sb);                                                                      \
    c = VADD(c, sc);                                                                      \
    d = VADD(d, sd);

#define BLOCKS_X8(STEP)                                                                   \
    LOAD_STATE(a, b, c, d, 0)                                                             \
    for (size_t n = 0; n < nblocks; n++) {                                                \
        __m256i m[16];                                                                    \
        LOAD_BLOCK(m, p, n);                                                              \
        __m256i sa = a, sb = b, sc = c, sd = d;                                           \
        MD5_STEPS(STEP##1)                                                                \
        ADD_STATE(a, b, c, d, sa, sb, sc, sd)                                             \
    }                                                                                     \
    STORE_STATE(a, b, c, d, 0)

#define BLOCKS_X16(STEP)                                                                  \
    LOAD_STATE(a0, b0, c0, d0, 0)                                                         \
    LOAD_STATE(a1, b1, c1, d1, GROUP)                                                     \
    for (size_t n = 0; n < nblocks; n++) {                                                \
        __m256i m0[16], m1[16];                                                           \
        LOAD_BLOCK(m0, p, n);                                                             \
        LOAD_BLOCK(m1, p + GROUP, n);                                                     \
        __m256i sa0 = a0, sb0 = b0, sc0 = c0, sd0 = d0;                                   \
        __m256i sa1 = a1, sb1 = b1, sc1 = c1, sd1 = d1;                                   \
        MD5_STEPS(STEP##2)                                                                \
        ADD_STATE(a0, b0, c0, d0, sa0, sb0, sc0, sd0)                                     \
        ADD_STATE(a1, b1, c1, d1, sa1, sb1, sc1, sd1)                                     \
    }                                                                                     \
    STORE_STATE(a0, b0, c0, d0, 0)                                                        \
    STORE_STATE(a1, b1, c1, d1, GROUP)

#define BLOCKS_X24(STEP)                                                                  \
    LOAD_STATE(a0, b0, c0, d0, 0)                                                         \
    LOAD_STATE(a1, b1, c1, d1, GROUP)                                                     \
    LOAD_STATE(a2, b2, c2, d2, 2 * GROUP)                                                 \
    for (size_t n = 0; n < nblocks; n++) {                                                \
        __m256i m0[16], m1[16], m2[16];                                                   \
        LOAD_BLOCK(m0, p, n);                                                             \
        LOAD_BLOCK(m1, p + GROUP, n);                                                     \
        LOAD_BLOCK(m2, p + 2 * GROUP, n);                                                 \
        __m256i sa0 = a0, sb0 = b0, sc0 = c0, sd0 = d0;                                   \
        __m256i sa1 = a1, sb1 = b1, sc1 = c1, sd1 = d1;                                   \
        __m256i sa2 = a2, sb2 = b2, sc2 = c2, sd2 = d2;                                   \
        MD5_STEPS(STEP##3)                                                                \
        ADD_STATE(a0, b0, c0, d0, sa0, sb0, sc0, sd0)                                     \
        ADD_STATE(a1, b1, c1, d1, sa1, sb1, sc1, sd1)                                     \
        ADD_STATE(a2, b2, c2, d2, sa2, sb2, sc2, sd2)                                     \
    }                                                                                     \
    STORE_STATE(a0, b0, c0, d0, 0)                                                        \
    STORE_STATE(a1, b1, c1, d1, GROUP)                                                    \
    STORE_STATE(a2, b2, c2, d2, 2 * GROUP)

__attribute__((target("avx2"))) static void
md5_x8_avx2(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks)
{
    const __m256i ones = _mm256_set1_epi32(-1);
    BLOCKS_X8(VSTEP)
}

__attribute__((target("avx2"))) static void
md5_x16_avx2(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks)
{
    const __m256i ones = _mm256_set1_epi32(-1);
    BLOCKS_X16(VSTEP)
}

__attribute__((target("avx2"))) static void
md5_x24_avx2(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks)
{
    const __m256i ones = _mm256_set1_epi32(-1);
    BLOCKS_X24(VSTEP)
}

/* AVX-512VL on 256-bit registers: vprold rotates, vpternlogd computes F, G, H or I in one
 * instruction (its immediate is the function's truth table over 0xf0, 0xcc, 0xaa) */
#define WF(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0xca)
#define WG(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0xe4)
#define WH(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0x96)
#define WI(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0x39)
#define WSTEP(f, a, b, c, d, w, k, s)                                                     \
    a = VADD(VADD(a, VADD(w, _mm256_set1_epi32((int)(k)))), W##f(b, c, d));               \
    a = VADD(_mm256_rol_epi32(a, s), b);

__attribute__((target("avx2,avx512f,avx512vl"))) static void
md5_x8_avx512(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks)
{
    BLOCKS_X8(WSTEP)
}

__attribute__((target("avx2,avx512f,avx512vl"))) static void
md5_x16_avx512(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks)
{
    BLOCKS_X16(WSTEP)
}

__attribute__((target("avx2,avx512f,avx512vl"))) static void
md5_x24_avx512(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks)
{
    BLOCKS_X24(WSTEP)
}

typedef struct {
    blocks_fn groups[GROUPS]; /* the kernel of 1, 2 or 3 groups */
} kernels_t;

/* the vector code named ``name`` if this CPU runs it ("auto": the best one), else NULL */
static const kernels_t *
simd_kernel(const char *name)
{
    static const kernels_t avx512_kernels = {{md5_x8_avx512, md5_x16_avx512, md5_x24_avx512}};
    static const kernels_t avx2_kernels = {{md5_x8_avx2, md5_x16_avx2, md5_x24_avx2}};
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    int avx2 = __builtin_cpu_supports("avx2");
    if ((!strcmp(name, "auto") || !strcmp(name, "avx512")) && avx512) {
        return &avx512_kernels;
    }
    if ((!strcmp(name, "auto") || !strcmp(name, "avx2")) && avx2) {
        return &avx2_kernels;
    }
    return NULL;
}
#else
typedef void (*blocks_fn)(uint32_t st[4][LANES], const uint8_t *const p[LANES], size_t nblocks);

typedef struct {
    blocks_fn groups[GROUPS]; /* the kernel of 1, 2 or 3 groups */
} kernels_t;

static const kernels_t *
simd_kernel(const char *name)
{
    (void)name;
    return NULL;
}
#endif

/* ---- files fed to the lanes ---- */

typedef struct {
    const char *const *paths;
    Py_ssize_t count;
    Py_ssize_t next; /* the next path to take, shared by the threads */
    const kernels_t *simd; /* NULL: scalar code only */
    int width;             /* the lanes each thread fills: fewer than LANES for a short batch */
    char (*hex)[33];  /* the digest of paths[i], when err[i] is 0 */
    int *err;         /* 0, an errno, NOT_REGULAR or NOT_DONE */
} job_t;

typedef struct {
    int fd; /* -1: the lane is idle */
    Py_ssize_t index;
    uint8_t *buf;
    size_t start, end; /* the bytes read and not hashed yet: buf[start:end] */
    uint64_t length;   /* the bytes hashed so far */
    int eof;
} lane_t;

static Py_ssize_t
take(job_t *job)
{
    Py_ssize_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
    return i < job->count ? i : -1;
}

/* 0 and the descriptor of a regular file, or an errno or NOT_REGULAR (a FIFO, a device, a
 * directory: opened without blocking and closed again unread) */
static int
open_regular(const char *path, int *fd_out)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return NOT_REGULAR;
    }
    *fd_out = fd;
    return 0;
}

/* read until the lane holds a whole block or its file ended; 0 or an errno */
static int
fill(lane_t *l)
{
    if (l->end - l->start >= 64 || l->eof) {
        return 0;
    }
    if (l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->end - l->start);
        l->end -= l->start;
        l->start = 0;
    }
    while (l->end < 64 && !l->eof) {
        ssize_t n = read(l->fd, l->buf + l->end, LANE_BUFFER - l->end);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            l->eof = 1;
        }
        l->end += (size_t)n;
    }
    return 0;
}

/* the padding and length of RFC 1321 (3.1, 3.2) after the last bytes, and the digest in hex */
static void
finish(const lane_t *l, uint32_t st[4][LANES], int j, char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    uint32_t s[4] = {st[0][j], st[1][j], st[2][j], st[3][j]};
    uint8_t tail[128];
    size_t rest = l->end - l->start;
    size_t nblocks = rest < 56 ? 1 : 2;
    uint64_t bits = (l->length + rest) * 8;
    memset(tail, 0, sizeof(tail));
    memcpy(tail, l->buf + l->start, rest);
    tail[rest] = 0x80;
    for (int k = 0; k < 8; k++) {
        tail[nblocks * 64 - 8 + k] = (uint8_t)(bits >> (8 * k));
    }
    md5_blocks(s, tail, nblocks);
    for (int w = 0; w < 4; w++) {
        for (int k = 0; k < 4; k++) {
            uint8_t byte = (uint8_t)(s[w] >> (8 * k));
            hex[8 * w + 2 * k] = digits[byte >> 4];
            hex[8 * w + 2 * k + 1] = digits[byte & 15];
        }
    }
    hex[32] = '\0';
}

static void
release(lane_t *l)
{
    close(l->fd);
    l->fd = -1;
}

/* give the lane a file holding a whole block, finishing the files that end; 0 when the batch
 * has no file left for it */
static int
feed(job_t *job, lane_t *l, uint32_t st[4][LANES], int j)
{
    for (;;) {
        if (l->fd < 0) {
            Py_ssize_t i = take(job);
            if (i < 0) {
                return 0;
            }
            int e = open_regular(job->paths[i], &l->fd);
            if (e != 0) {
                job->err[i] = e;
                l->fd = -1;
                continue;
            }
            l->index = i;
            l->start = l->end = 0;
            l->length = 0;
            l->eof = 0;
            for (int r = 0; r < 4; r++) {
                st[r][j] = IV[r];
            }
        }
        int e = fill(l);
        if (e != 0) {
            job->err[l->index] = e;
            release(l);
            continue;
        }
        if (l->end - l->start >= 64) {
            return 1;
        }
        finish(l, st, j, job->hex[l->index]);
        job->err[l->index] = 0;
        release(l);
    }
}

/* hash nblocks blocks of each busy lane: their states gathered into lanes 0, 1, ..., hashed by
 * the kernel of as few groups as hold them (no work on idle lanes but a group's last few), then
 * put back */
static void
blocks_gathered(const kernels_t *simd, lane_t *lanes, int width, uint32_t st[4][LANES],
                const uint8_t *idle, size_t nblocks)
{
    uint32_t g[4][LANES];
    const uint8_t *p[LANES];
    int from[LANES];
    int k = 0;
    memset(g, 0, sizeof(g));
    for (int j = 0; j < width; j++) {
        if (lanes[j].fd >= 0) {
            from[k++] = j;
        }
    }
    for (int t = 0; t < LANES; t++) {
        p[t] = t < k ? lanes[from[t]].buf + lanes[from[t]].start : idle;
        for (int r = 0; t < k && r < 4; r++) {
            g[r][t] = st[r][from[t]];
        }
    }
    simd->groups[(k - 1) / GROUP](g, p, nblocks);
    for (int t = 0; t < k; t++) {
        for (int r = 0; r < 4; r++) {
            st[r][from[t]] = g[r][t];
        }
    }
}

/* hash every block each busy lane holds with scalar code, the lanes two by two (md5_blocks2)
 * for as many blocks as both hold, then each lane's rest alone */
static void
blocks_scalar(lane_t *lanes, int width, uint32_t st[4][LANES])
{
    int busy[LANES];
    int count = 0;
    for (int j = 0; j < width; j++) {
        if (lanes[j].fd >= 0) {
            busy[count++] = j;
        }
    }
    for (int i = 0; i < count; i += 2) {
        int streams = i + 1 < count ? 2 : 1;
        uint32_t s[2][4];
        size_t ready[2];
        for (int t = 0; t < streams; t++) {
            lane_t *l = &lanes[busy[i + t]];
            ready[t] = (l->end - l->start) / 64;
            for (int r = 0; r < 4; r++) {
                s[t][r] = st[r][busy[i + t]];
            }
        }
        size_t paired = 0;
        if (streams == 2) {
            lane_t *l0 = &lanes[busy[i]], *l1 = &lanes[busy[i + 1]];
            paired = ready[0] < ready[1] ? ready[0] : ready[1];
            md5_blocks2(s[0], l0->buf + l0->start, s[1], l1->buf + l1->start, paired);
        }
        for (int t = 0; t < streams; t++) {
            lane_t *l = &lanes[busy[i + t]];
            md5_blocks(s[t], l->buf + l->start + paired * 64, ready[t] - paired);
            for (int r = 0; r < 4; r++) {
                st[r][busy[i + t]] = s[t][r];
            }
            l->start += ready[t] * 64;
            l->length += ready[t] * 64;
        }
    }
}

static void
hash_lanes(job_t *job)
{
    const int width = job->width;
    uint8_t *memory = calloc((size_t)width + 1, LANE_BUFFER);
    if (memory == NULL) {
        return; /* the files this thread would have taken stay NOT_DONE or go to another */
    }
    /* an idle lane hashes zeros, and its state is thrown away */
    const uint8_t *idle = memory + (size_t)width * LANE_BUFFER;
    lane_t lanes[LANES];
    uint32_t st[4][LANES];
    memset(st, 0, sizeof(st));
    for (int j = 0; j < width; j++) {
        lanes[j].fd = -1;
        lanes[j].buf = memory + (size_t)j * LANE_BUFFER;
    }
    for (;;) {
        int busy = 0;
        size_t nblocks = SIZE_MAX;
        for (int j = 0; j < width; j++) {
            if (feed(job, &lanes[j], st, j)) {
                size_t ready = (lanes[j].end - lanes[j].start) / 64;
                busy++;
                nblocks = ready < nblocks ? ready : nblocks;
            }
        }
        if (busy == 0) {
            break;
        }
        if (job->simd != NULL && busy >= SIMD_MIN_LANES) {
            blocks_gathered(job->simd, lanes, width, st, idle, nblocks);
            for (int j = 0; j < width; j++) {
                if (lanes[j].fd >= 0) {
                    lanes[j].start += nblocks * 64;
                    lanes[j].length += nblocks * 64;
                }
            }
            continue;
        }
        blocks_scalar(lanes, width, st);
    }
    free(memory);
}

static void *
hash_lanes_thread(void *job)
{
    hash_lanes((job_t *)job);
    return NULL;
}

/* ---- the module ---- */

PyDoc_STRVAR(md5_files_doc,
"md5_files(paths, /, *, threads=1, simd='auto')\n--\n\n"
"The md5 of each file, in order: its hex digest, or an int when it could not be hashed\n"
"(an errno, or -1 when the path is not a regular file). Up to 24 files are hashed at once\n"
"in each of `threads` threads, with the vector code `simd` names: 'auto' (the best this CPU\n"
"has), 'avx512', 'avx2' (ValueError if the CPU lacks it) or 'off' (scalar code).");

static PyObject *
md5_files(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"", "threads", "simd", NULL};
    PyObject *paths_arg;
    int threads = 1;
    const char *simd = "auto";
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$is:md5_files", keywords, &paths_arg,
                                     &threads, &simd)) {
        return NULL;
    }
    const kernels_t *kernels = strcmp(simd, "off") ? simd_kernel(simd) : NULL;
    if (kernels == NULL && strcmp(simd, "off") && strcmp(simd, "auto")) {
        PyErr_Format(PyExc_ValueError,
                     "md5_files: simd='%s' is not vector code this CPU runs: use 'auto', 'off' "
                     "or one of simd_levels()",
                     simd);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(paths_arg, "md5_files: paths must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    PyObject *encoded = PyList_New(count);
    const char **paths = PyMem_Calloc((size_t)count + 1, sizeof(char *));
    char(*hex)[33] = PyMem_Calloc((size_t)count + 1, sizeof(*hex));
    int *err = PyMem_Calloc((size_t)count + 1, sizeof(int));
    if (encoded == NULL || paths == NULL || hex == NULL || err == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *raw = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(seq, i), &raw)) {
            goto done;
        }
        PyList_SET_ITEM(encoded, i, raw);
        paths[i] = PyBytes_AS_STRING(raw);
        err[i] = NOT_DONE;
    }
    if (threads < 1) {
        threads = 1;
    }
    if (threads > MAX_THREADS) {
        threads = MAX_THREADS;
    }
    if (threads > count) {
        threads = count > 0 ? (int)count : 1;
    }
    /* a thread is worth starting for a group of eight files with vector code, for two with
     * scalar code (hashed two by two): fewer, and a thread left with one file would hash it at
     * twice the CPU time of a pair, or with vector code four times (five files are one thread's
     * eight lanes, sixteen two threads' eight each, two files one thread's pair) */
    Py_ssize_t least = kernels != NULL ? GROUP : 2;
    if (threads > count / least) {
        threads = count / least > 1 ? (int)(count / least) : 1;
    }
    Py_ssize_t share = (count + threads - 1) / threads;
    int width = share < least ? (int)least : share > LANES ? LANES : (int)share;
    job_t job = {paths, count, 0, kernels, width, hex, err};
    Py_BEGIN_ALLOW_THREADS
    pthread_t others[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&others[started], NULL, hash_lanes_thread, &job) == 0) {
            started++;
        }
    }
    hash_lanes(&job);
    for (int t = 0; t < started; t++) {
        pthread_join(others[t], NULL);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(count);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (err[i] == NOT_DONE) {
            Py_CLEAR(result);
            PyErr_NoMemory();
            goto done;
        }
        PyObject *item = err[i] == 0 ? PyUnicode_FromStringAndSize(hex[i], 32)
                                     : PyLong_FromLong(err[i]);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, item);
    }
done:
    PyMem_Free(err);
    PyMem_Free(hex);
    PyMem_Free(paths);
    Py_XDECREF(encoded);
    Py_DECREF(seq);
    return result;
}

PyDoc_STRVAR(simd_levels_doc,
"simd_levels()\n--\n\nThe vector code this CPU runs, best first: 'avx512', 'avx2', both or none.");

static PyObject *
simd_levels(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *found = PyList_New(0);
    const char *names[] = {"avx512", "avx2"};
    for (size_t i = 0; found != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (simd_kernel(names[i]) == NULL) {
            continue;
        }
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL || PyList_Append(found, name) != 0) {
            Py_XDECREF(name);
            Py_CLEAR(found);
            break;
        }
        Py_DECREF(name);
    }
    return found;
}

static PyMethodDef methods[] = {
    {"md5_files", (PyCFunction)(void (*)(void))md5_files, METH_VARARGS | METH_KEYWORDS,
     md5_files_doc},
    {"simd_levels", simd_levels, METH_NOARGS, simd_levels_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_md5x",
    "MD5 of many files at once (24 in the lanes of AVX2 registers), the GIL released.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__md5x(void)
{
#if MD5X_X86
    __builtin_cpu_init();
#endif
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "LANES", LANES) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
