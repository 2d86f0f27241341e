"""zfec peer of the FEC figures (bench/fec-peers.bench.ts).

usage: python3 zfec_helper.py K M LEN ROUNDS < DATA

DATA is the k data shards, K x LEN bytes one after the other (the driver,
bench/fec-peers/peers.ts, sends the bench's fixed pseudo-random pattern).
Checks first that zfec's parity rebuilds the data with the first M data
shards lost (exit 1 otherwise), then times ROUNDS calls of
zfec.Encoder(K, K + M).encode(data, parity share numbers) after one untimed
call, and prints on one line

    <MB/s of data> <FNV-1a 32 of the parity, hex>

MB = 10^6 bytes of data (K x LEN per call). zfec's generator matrix (a
systematic Vandermonde) is not ours, so its parity bytes differ from
gatesock's; only the speed is compared.
"""
import sys
import time

import zfec


def main() -> int:
    if len(sys.argv) != 5:
        print("usage: zfec_helper.py K M LEN ROUNDS < DATA", file=sys.stderr)
        return 2
    k, m, length, rounds = (int(a) for a in sys.argv[1:])
    if not (1 <= k and 1 <= m and k + m <= 256 and length >= 1 and rounds >= 1):
        print(f"zfec_helper: bad shape k={k} m={m} len={length} rounds={rounds}", file=sys.stderr)
        return 2
    raw = sys.stdin.buffer.read()
    if len(raw) != k * length:
        print(f"zfec_helper: read {len(raw)} bytes of data, expected {k * length}", file=sys.stderr)
        return 2
    data = [raw[j * length:(j + 1) * length] for j in range(k)]
    wanted = list(range(k, k + m))
    encoder = zfec.Encoder(k, k + m)

    parity = encoder.encode(data, wanted)  # check, and warm-up
    if len(parity) != m or any(len(p) != length for p in parity):
        print("zfec_helper: encode returned the wrong shards", file=sys.stderr)
        return 1
    nums = list(range(m, k + m))  # the first m data shards lost
    shares = [data[i] for i in range(m, k)] + list(parity)
    rebuilt = zfec.Decoder(k, k + m).decode(shares, nums)
    if [bytes(b) for b in rebuilt] != data:
        print("zfec_helper: decoding the parity did not give the data back", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    for _ in range(rounds):
        encoder.encode(data, wanted)
    seconds = time.perf_counter() - t0

    h = 2166136261
    for p in parity:
        for b in bytes(p):
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    print(f"{rounds * k * length / seconds / 1e6:.3f} {h:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
