/*
 * ISA-L peer of the FEC figures (bench/fec-peers.bench.ts): time ISA-L's
 * Reed-Solomon encode for one shape and print, on one line,
 *
 *     <MB/s of data> <FNV-1a 32 of the parity, hex>
 *
 * usage: isal-rs K M LEN ROUNDS
 *
 * The k data shards hold the bench's fixed pseudo-random pattern (the same
 * LCG as bench/fec-peers/peers.ts, shard after shard), the generator is
 * ISA-L's gf_gen_cauchy1_matrix (parity row i, column j = 1 / ((k+i) ^ j)),
 * and the timed loop is ROUNDS calls of ec_encode_data after one untimed
 * call. MB = 10^6 bytes of data (k x LEN per call). The checksum lets the
 * driver check that ISA-L computed the parity it should; our own parity
 * differs (src/fec/reed-solomon.ts normalises the Cauchy matrix), so only
 * the speed is compared.
 *
 * Compiled at bench time: cc -O2 isal-rs.c -o DIR/isal-rs -lisal
 */
#include <isa-l/erasure_code.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long arg(const char *s, long lo, long hi, const char *what) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "isal-rs: %s must be an integer in [%ld, %ld], got %s\n", what, lo, hi, s);
    exit(2);
  }
  return v;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: isal-rs K M LEN ROUNDS\n");
    return 2;
  }
  int k = (int)arg(argv[1], 1, 255, "K");
  int m = (int)arg(argv[2], 1, 256 - k, "M");
  int len = (int)arg(argv[3], 1, 1 << 28, "LEN");
  long rounds = arg(argv[4], 1, 1L << 40, "ROUNDS");

  unsigned char *a = malloc((size_t)(k + m) * k);
  unsigned char *tables = malloc((size_t)32 * k * m);
  unsigned char **data = malloc(sizeof(*data) * k);
  unsigned char **parity = malloc(sizeof(*parity) * m);
  if (!a || !tables || !data || !parity) return 1;
  uint32_t x = (uint32_t)(k * 1000 + m) | 1;
  for (int j = 0; j < k; j++) {
    if (posix_memalign((void **)&data[j], 64, len)) return 1;
    for (int i = 0; i < len; i++) data[j][i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 23);
  }
  for (int i = 0; i < m; i++)
    if (posix_memalign((void **)&parity[i], 64, len)) return 1;

  gf_gen_cauchy1_matrix(a, k + m, k);
  ec_init_tables(k, m, a + k * k, tables);
  ec_encode_data(len, k, m, tables, data, parity); /* warm-up, untimed */
  double t0 = now();
  for (long r = 0; r < rounds; r++) ec_encode_data(len, k, m, tables, data, parity);
  double seconds = now() - t0;

  uint32_t h = 2166136261u;
  for (int i = 0; i < m; i++)
    for (int b = 0; b < len; b++) h = (h ^ parity[i][b]) * 16777619u;
  printf("%.3f %08x\n", (double)rounds * k * len / seconds / 1e6, h);
  return 0;
}
