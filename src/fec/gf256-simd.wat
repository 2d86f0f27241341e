;; GF(2^8) multiply kernels on WebAssembly SIMD (128-bit), split-nibble tables.
;;
;; Source of src/fec/gf256-simd-module.ts: `node scripts/gen-gf256-wasm.mjs`
;; assembles this file (wabt) into that module; test/fec/gf256-simd.test.ts
;; fails when the committed bytes are not what this text assembles to.
;;
;; Method (ISA-L, klauspost/reedsolomon's galMulSSSE3): for a coefficient c,
;; c·x = c·(x & 15) ^ c·(x & 0xf0), because multiplication by c is linear over
;; GF(2). So two 16-entry tables per coefficient, lo[i] = c·i and
;; hi[i] = c·(i << 4), give 16 products at once: two `i8x16.swizzle`s (one
;; on the low nibbles, one on the high nibbles) and a xor. Nibble indices are
;; always 0…15, so swizzle's "index ≥ 16 gives 0" rule never applies.
;;
;; Memory layout (one exported memory; the JS side, gf256-simd.ts, owns
;; every address and fills the tables once at load):
;;
;;     0        8,192   8,448    8,576   8,704      74,240              end
;;     +--------+-------+--------+-------+----------+-------------------+
;;     | tables | inv   | t16    | basis | rows     | data              |
;;     +--------+-------+--------+-------+----------+-------------------+
;;
;;   tables  256 coefficients × 32 bytes: lo[16] then hi[16]; c's at c << 5
;;   inv     inv[a] = a⁻¹ (inv[0] = 0), for `invert`'s pivots
;;   t16     `dot16`'s tables for one GF(2^16) coefficient (built per use)
;;   basis   `dot16`'s c·x^j for j = 0…15 (16-bit words)
;;   rows    coefficients of a `dot` call (nOut rows of nIn bytes) or of a
;;           `dot16` call (nOut rows of nIn 16-bit words)
;;   data    the shards' bytes (or an `invert` call's two matrices),
;;           copied in and out by the JS side
;;
;; Every function trusts its arguments (the JS side checks and lays out):
;; no bounds beyond the memory's own traps.
(module
  (memory (export "memory") 10)

  ;; out[i] ^= c·in[i] for 0 ≤ i < len. 32 bytes per step, then 16, then bytes.
  (func $mulAdd (export "mulAdd") (param $c i32) (param $in i32) (param $out i32) (param $len i32)
    (local $lo v128) (local $hi v128) (local $m v128) (local $x v128) (local $y v128)
    (local $t i32) (local $end i32) (local $b i32)
    (local.set $t (i32.shl (local.get $c) (i32.const 5)))
    (local.set $lo (v128.load (local.get $t)))
    (local.set $hi (v128.load offset=16 (local.get $t)))
    (local.set $m (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $end (i32.add (local.get $in) (i32.and (local.get $len) (i32.const -32))))
    (block $done32
      (loop $step32
        (br_if $done32 (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $x (v128.load (local.get $in)))
        (local.set $y (v128.load offset=16 (local.get $in)))
        (v128.store (local.get $out)
          (v128.xor (v128.load (local.get $out))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
              (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $x) (i32.const 4)) (local.get $m))))))
        (v128.store offset=16 (local.get $out)
          (v128.xor (v128.load offset=16 (local.get $out))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $y) (local.get $m)))
              (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $y) (i32.const 4)) (local.get $m))))))
        (local.set $in (i32.add (local.get $in) (i32.const 32)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $step32)))
    (if (i32.and (local.get $len) (i32.const 16))
      (then
        (local.set $x (v128.load (local.get $in)))
        (v128.store (local.get $out)
          (v128.xor (v128.load (local.get $out))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
              (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $x) (i32.const 4)) (local.get $m))))))
        (local.set $in (i32.add (local.get $in) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))))
    ;; Tail: up to 15 bytes, each from the two tables' bytes.
    (local.set $end (i32.add (local.get $in) (i32.and (local.get $len) (i32.const 15))))
    (block $done1
      (loop $step1
        (br_if $done1 (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $in)))
        (i32.store8 (local.get $out)
          (i32.xor (i32.load8_u (local.get $out))
            (i32.xor
              (i32.load8_u (i32.add (local.get $t) (i32.and (local.get $b) (i32.const 15))))
              (i32.load8_u offset=16 (i32.add (local.get $t) (i32.shr_u (local.get $b) (i32.const 4)))))))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $step1))))

  ;; out[i] = c·in[i] for 0 ≤ i < len (in == out allowed). Steps as mulAdd.
  (func $mul (export "mul") (param $c i32) (param $in i32) (param $out i32) (param $len i32)
    (local $lo v128) (local $hi v128) (local $m v128) (local $x v128) (local $y v128)
    (local $t i32) (local $end i32) (local $b i32)
    (local.set $t (i32.shl (local.get $c) (i32.const 5)))
    (local.set $lo (v128.load (local.get $t)))
    (local.set $hi (v128.load offset=16 (local.get $t)))
    (local.set $m (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $end (i32.add (local.get $in) (i32.and (local.get $len) (i32.const -32))))
    (block $done32
      (loop $step32
        (br_if $done32 (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $x (v128.load (local.get $in)))
        (local.set $y (v128.load offset=16 (local.get $in)))
        (v128.store (local.get $out)
          (v128.xor
            (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $x) (i32.const 4)) (local.get $m)))))
        (v128.store offset=16 (local.get $out)
          (v128.xor
            (i8x16.swizzle (local.get $lo) (v128.and (local.get $y) (local.get $m)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $y) (i32.const 4)) (local.get $m)))))
        (local.set $in (i32.add (local.get $in) (i32.const 32)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $step32)))
    (if (i32.and (local.get $len) (i32.const 16))
      (then
        (local.set $x (v128.load (local.get $in)))
        (v128.store (local.get $out)
          (v128.xor
            (i8x16.swizzle (local.get $lo) (v128.and (local.get $x) (local.get $m)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $x) (i32.const 4)) (local.get $m)))))
        (local.set $in (i32.add (local.get $in) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))))
    (local.set $end (i32.add (local.get $in) (i32.and (local.get $len) (i32.const 15))))
    (block $done1
      (loop $step1
        (br_if $done1 (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $in)))
        (i32.store8 (local.get $out)
          (i32.xor
            (i32.load8_u (i32.add (local.get $t) (i32.and (local.get $b) (i32.const 15))))
            (i32.load8_u offset=16 (i32.add (local.get $t) (i32.shr_u (local.get $b) (i32.const 4))))))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $step1))))

  ;; out[i] ^= in[i] for 0 ≤ i < len: 32 bytes per step, then 16, then bytes.
  (func (export "xorInto") (param $in i32) (param $out i32) (param $len i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $in) (i32.and (local.get $len) (i32.const -32))))
    (block $done32
      (loop $step32
        (br_if $done32 (i32.ge_u (local.get $in) (local.get $end)))
        (v128.store (local.get $out) (v128.xor (v128.load (local.get $out)) (v128.load (local.get $in))))
        (v128.store offset=16 (local.get $out)
          (v128.xor (v128.load offset=16 (local.get $out)) (v128.load offset=16 (local.get $in))))
        (local.set $in (i32.add (local.get $in) (i32.const 32)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $step32)))
    (if (i32.and (local.get $len) (i32.const 16))
      (then
        (v128.store (local.get $out) (v128.xor (v128.load (local.get $out)) (v128.load (local.get $in))))
        (local.set $in (i32.add (local.get $in) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))))
    (local.set $end (i32.add (local.get $in) (i32.and (local.get $len) (i32.const 15))))
    (block $done1
      (loop $step1
        (br_if $done1 (i32.ge_u (local.get $in) (local.get $end)))
        (i32.store8 (local.get $out) (i32.xor (i32.load8_u (local.get $out)) (i32.load8_u (local.get $in))))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $step1))))

  ;; The dot products of a block: output r (at out + r·stride) =
  ;; Σ_t rows[r·nIn + t] · input t (at in + t·stride), over len bytes.
  ;; len must be a multiple of 32 (the JS side pads the stride; padding
  ;; bytes give padding results nobody reads). Two outputs at a time, so
  ;; each input vector is loaded and split into nibbles once for both; 32
  ;; bytes of each output accumulate in registers over all inputs and are
  ;; stored once (no read-modify-write of the output per input).
  (func (export "dot") (param $rows i32) (param $nIn i32) (param $nOut i32)
                       (param $in i32) (param $out i32) (param $stride i32) (param $len i32)
    (local $m v128) (local $x0 v128) (local $x1 v128) (local $h0 v128) (local $h1 v128)
    (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128)
    (local $r i32) (local $p i32) (local $t i32) (local $src i32) (local $row i32) (local $ta i32) (local $tb i32)
    (local $dst i32)
    (local.set $m (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    ;; Pairs of outputs.
    (block $pairsDone
      (loop $pair
        (br_if $pairsDone (i32.gt_u (i32.add (local.get $r) (i32.const 2)) (local.get $nOut)))
        (local.set $row (i32.add (local.get $rows) (i32.mul (local.get $r) (local.get $nIn))))
        (local.set $dst (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $stride))))
        (local.set $p (i32.const 0))
        (block $posDone
          (loop $pos
            (br_if $posDone (i32.ge_u (local.get $p) (local.get $len)))
            (local.set $a0 (v128.const i64x2 0 0))
            (local.set $a1 (v128.const i64x2 0 0))
            (local.set $b0 (v128.const i64x2 0 0))
            (local.set $b1 (v128.const i64x2 0 0))
            (local.set $src (i32.add (local.get $in) (local.get $p)))
            (local.set $t (i32.const 0))
            (block $inDone
              (loop $input
                (br_if $inDone (i32.ge_u (local.get $t) (local.get $nIn)))
                (local.set $x0 (v128.load (local.get $src)))
                (local.set $x1 (v128.load offset=16 (local.get $src)))
                (local.set $h0 (v128.and (i16x8.shr_u (local.get $x0) (i32.const 4)) (local.get $m)))
                (local.set $h1 (v128.and (i16x8.shr_u (local.get $x1) (i32.const 4)) (local.get $m)))
                (local.set $x0 (v128.and (local.get $x0) (local.get $m)))
                (local.set $x1 (v128.and (local.get $x1) (local.get $m)))
                ;; output r
                (local.set $ta (i32.shl (i32.load8_u (i32.add (local.get $row) (local.get $t))) (i32.const 5)))
                (local.set $lo (v128.load (local.get $ta)))
                (local.set $hi (v128.load offset=16 (local.get $ta)))
                (local.set $a0 (v128.xor (local.get $a0)
                  (v128.xor (i8x16.swizzle (local.get $lo) (local.get $x0)) (i8x16.swizzle (local.get $hi) (local.get $h0)))))
                (local.set $a1 (v128.xor (local.get $a1)
                  (v128.xor (i8x16.swizzle (local.get $lo) (local.get $x1)) (i8x16.swizzle (local.get $hi) (local.get $h1)))))
                ;; output r + 1
                (local.set $tb (i32.shl
                  (i32.load8_u (i32.add (i32.add (local.get $row) (local.get $nIn)) (local.get $t))) (i32.const 5)))
                (local.set $lo (v128.load (local.get $tb)))
                (local.set $hi (v128.load offset=16 (local.get $tb)))
                (local.set $b0 (v128.xor (local.get $b0)
                  (v128.xor (i8x16.swizzle (local.get $lo) (local.get $x0)) (i8x16.swizzle (local.get $hi) (local.get $h0)))))
                (local.set $b1 (v128.xor (local.get $b1)
                  (v128.xor (i8x16.swizzle (local.get $lo) (local.get $x1)) (i8x16.swizzle (local.get $hi) (local.get $h1)))))
                (local.set $src (i32.add (local.get $src) (local.get $stride)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $input)))
            (v128.store (i32.add (local.get $dst) (local.get $p)) (local.get $a0))
            (v128.store offset=16 (i32.add (local.get $dst) (local.get $p)) (local.get $a1))
            (v128.store (i32.add (i32.add (local.get $dst) (local.get $stride)) (local.get $p)) (local.get $b0))
            (v128.store offset=16 (i32.add (i32.add (local.get $dst) (local.get $stride)) (local.get $p)) (local.get $b1))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (br $pos)))
        (local.set $r (i32.add (local.get $r) (i32.const 2)))
        (br $pair)))
    ;; The last output of an odd count.
    (if (i32.lt_u (local.get $r) (local.get $nOut))
      (then
        (local.set $row (i32.add (local.get $rows) (i32.mul (local.get $r) (local.get $nIn))))
        (local.set $dst (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $stride))))
        (local.set $p (i32.const 0))
        (block $posDone
          (loop $pos
            (br_if $posDone (i32.ge_u (local.get $p) (local.get $len)))
            (local.set $a0 (v128.const i64x2 0 0))
            (local.set $a1 (v128.const i64x2 0 0))
            (local.set $src (i32.add (local.get $in) (local.get $p)))
            (local.set $t (i32.const 0))
            (block $inDone
              (loop $input
                (br_if $inDone (i32.ge_u (local.get $t) (local.get $nIn)))
                (local.set $x0 (v128.load (local.get $src)))
                (local.set $x1 (v128.load offset=16 (local.get $src)))
                (local.set $ta (i32.shl (i32.load8_u (i32.add (local.get $row) (local.get $t))) (i32.const 5)))
                (local.set $lo (v128.load (local.get $ta)))
                (local.set $hi (v128.load offset=16 (local.get $ta)))
                (local.set $a0 (v128.xor (local.get $a0)
                  (v128.xor
                    (i8x16.swizzle (local.get $lo) (v128.and (local.get $x0) (local.get $m)))
                    (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $x0) (i32.const 4)) (local.get $m))))))
                (local.set $a1 (v128.xor (local.get $a1)
                  (v128.xor
                    (i8x16.swizzle (local.get $lo) (v128.and (local.get $x1) (local.get $m)))
                    (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $x1) (i32.const 4)) (local.get $m))))))
                (local.set $src (i32.add (local.get $src) (local.get $stride)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $input)))
            (v128.store (i32.add (local.get $dst) (local.get $p)) (local.get $a0))
            (v128.store offset=16 (i32.add (local.get $dst) (local.get $p)) (local.get $a1))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (br $pos))))))

  ;; Gauss–Jordan elimination on two n × n matrices of rows `stride` bytes
  ;; apart (stride a multiple of 32, padding bytes zero): turns `work` into
  ;; the identity and `inv` (the identity on entry) into work⁻¹. Returns 1,
  ;; or 0 when `work` is singular (both matrices then hold partial results).
  ;; The same steps as the JS loop of gf256-kernel.ts (`gaussJordan`): the
  ;; first non-zero pivot at or below the diagonal, swapped up; the pivot row
  ;; scaled to a leading 1; the column cleared in every other row. In `work`
  ;; a row operation starts at the pivot column's 32-byte step: the columns
  ;; before it are zero in the pivot row by then.
  (func (export "invert") (param $n i32) (param $work i32) (param $inv i32) (param $stride i32) (result i32)
    (local $col i32) (local $p i32) (local $r i32) (local $f i32) (local $skip i32)
    (local $a i32) (local $b i32) (local $i i32) (local $x v128)
    (block $done
      (loop $column
        (br_if $done (i32.ge_u (local.get $col) (local.get $n)))
        ;; Pivot.
        (local.set $p (local.get $col))
        (block $found
          (loop $search
            (br_if $found (i32.ge_u (local.get $p) (local.get $n)))
            (br_if $found (i32.load8_u
              (i32.add (i32.add (local.get $work) (i32.mul (local.get $p) (local.get $stride))) (local.get $col))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $search)))
        (if (i32.eq (local.get $p) (local.get $n)) (then (return (i32.const 0))))
        (if (i32.ne (local.get $p) (local.get $col))
          (then
            ;; Swap rows p and col of both matrices, 16 bytes at a time.
            (local.set $i (i32.const 0))
            (block $swapped
              (loop $swap
                (br_if $swapped (i32.ge_u (local.get $i) (local.get $stride)))
                (local.set $a (i32.add (i32.add (local.get $work) (i32.mul (local.get $p) (local.get $stride))) (local.get $i)))
                (local.set $b (i32.add (i32.add (local.get $work) (i32.mul (local.get $col) (local.get $stride))) (local.get $i)))
                (local.set $x (v128.load (local.get $a)))
                (v128.store (local.get $a) (v128.load (local.get $b)))
                (v128.store (local.get $b) (local.get $x))
                (local.set $a (i32.add (i32.add (local.get $inv) (i32.mul (local.get $p) (local.get $stride))) (local.get $i)))
                (local.set $b (i32.add (i32.add (local.get $inv) (i32.mul (local.get $col) (local.get $stride))) (local.get $i)))
                (local.set $x (v128.load (local.get $a)))
                (v128.store (local.get $a) (v128.load (local.get $b)))
                (v128.store (local.get $b) (local.get $x))
                (local.set $i (i32.add (local.get $i) (i32.const 16)))
                (br $swap)))))
        ;; Scale the pivot row: $a, $b = its rows in work and inv.
        (local.set $skip (i32.and (local.get $col) (i32.const -32)))
        (local.set $a (i32.add (local.get $work) (i32.mul (local.get $col) (local.get $stride))))
        (local.set $b (i32.add (local.get $inv) (i32.mul (local.get $col) (local.get $stride))))
        (local.set $f (i32.load8_u offset=8192 (i32.load8_u (i32.add (local.get $a) (local.get $col)))))
        (call $mul (local.get $f) (i32.add (local.get $a) (local.get $skip)) (i32.add (local.get $a) (local.get $skip))
          (i32.sub (local.get $stride) (local.get $skip)))
        (call $mul (local.get $f) (local.get $b) (local.get $b) (local.get $stride))
        ;; Clear the column in every other row.
        (local.set $r (i32.const 0))
        (block $cleared
          (loop $clear
            (br_if $cleared (i32.ge_u (local.get $r) (local.get $n)))
            (if (i32.ne (local.get $r) (local.get $col))
              (then
                (local.set $f (i32.load8_u
                  (i32.add (i32.add (local.get $work) (i32.mul (local.get $r) (local.get $stride))) (local.get $col))))
                (if (local.get $f)
                  (then
                    (call $mulAdd (local.get $f) (i32.add (local.get $a) (local.get $skip))
                      (i32.add (i32.add (local.get $work) (i32.mul (local.get $r) (local.get $stride))) (local.get $skip))
                      (i32.sub (local.get $stride) (local.get $skip)))
                    (call $mulAdd (local.get $f) (local.get $b)
                      (i32.add (local.get $inv) (i32.mul (local.get $r) (local.get $stride)))
                      (local.get $stride))))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $clear)))
        (local.set $col (i32.add (local.get $col) (i32.const 1)))
        (br $column)))
    (i32.const 1))

  ;; GF(2^16) (polynomial 0x1100b, words little-endian: see reed-solomon16.ts)
  ;; — the dot products of a block, as `dot` but over 16-bit words:
  ;; output r (at out + r·stride) = Σ_t rows[r·nIn + t] · input t, over len
  ;; bytes (len a multiple of 32, the JS side pads). Multiplication by c is
  ;; linear over GF(2), so c·w = Σ_i c·(nibble_i(w) << 4i) over the word's
  ;; four nibbles: eight 16-entry tables per coefficient, T_i giving the low
  ;; and the high byte of c·(v << 4i). Per 32 bytes (16 words): the low and
  ;; the high bytes are gathered into one vector each (two shuffles), split
  ;; into four nibble vectors, looked up in the eight tables (eight swizzles),
  ;; and the two product byte vectors interleaved back into words (two more
  ;; shuffles). The tables are built here for each (output, input) pair from
  ;; c·x^j (j < 16): T_i[v] = T_i[v with its lowest bit cleared] ^ c·x^(4i +
  ;; that bit) — about a hundred scalar steps, against 44 vector steps for a
  ;; 1,400-byte shard. Output-major: each output is zeroed, then every input
  ;; multiplied into it (its slice stays in cache).
  (func (export "dot16") (param $rows i32) (param $nIn i32) (param $nOut i32)
                         (param $in i32) (param $out i32) (param $stride i32) (param $len i32)
    (local $m v128) (local $x0 v128) (local $x1 v128) (local $n0 v128) (local $n1 v128) (local $n2 v128) (local $n3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $h0 v128) (local $h1 v128) (local $h2 v128) (local $h3 v128)
    (local $pl v128) (local $ph v128)
    (local $r i32) (local $t i32) (local $c i32) (local $j i32) (local $v i32) (local $i i32) (local $b i32)
    (local $src i32) (local $dst i32) (local $p i32) (local $tab i32) (local $prev i32)
    (local.set $m (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (block $outsDone
      (loop $output
        (br_if $outsDone (i32.ge_u (local.get $r) (local.get $nOut)))
        (local.set $dst (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $stride))))
        (local.set $p (i32.const 0))
        (block $zeroed
          (loop $zero
            (br_if $zeroed (i32.ge_u (local.get $p) (local.get $len)))
            (v128.store (i32.add (local.get $dst) (local.get $p)) (v128.const i64x2 0 0))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $zero)))
        (local.set $t (i32.const 0))
        (block $insDone
          (loop $input
            (br_if $insDone (i32.ge_u (local.get $t) (local.get $nIn)))
            (local.set $c (i32.load16_u
              (i32.add (local.get $rows) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $nIn)) (local.get $t)) (i32.const 1)))))
            (if (local.get $c)
              (then
                ;; basis[j] = c·x^j, j = 0…15, at 8,576.
                (local.set $b (local.get $c))
                (local.set $j (i32.const 0))
                (block $basisDone
                  (loop $basis
                    (br_if $basisDone (i32.ge_u (local.get $j) (i32.const 16)))
                    (i32.store16 offset=8576 (i32.shl (local.get $j) (i32.const 1)) (local.get $b))
                    (local.set $b (i32.xor
                      (i32.and (i32.shl (local.get $b) (i32.const 1)) (i32.const 0xffff))
                      (select (i32.const 0x100b) (i32.const 0) (i32.and (local.get $b) (i32.const 0x8000)))))
                    (local.set $j (i32.add (local.get $j) (i32.const 1)))
                    (br $basis)))
                ;; Tables at 8,448: nibble position i's low bytes at 8,448 + 32i,
                ;; its high bytes 16 further; entry 0 is 0.
                (local.set $i (i32.const 0))
                (block $tablesDone
                  (loop $table
                    (br_if $tablesDone (i32.ge_u (local.get $i) (i32.const 4)))
                    (local.set $tab (i32.add (i32.const 8448) (i32.shl (local.get $i) (i32.const 5))))
                    (i32.store8 (local.get $tab) (i32.const 0))
                    (i32.store8 offset=16 (local.get $tab) (i32.const 0))
                    (local.set $v (i32.const 1))
                    (block $entriesDone
                      (loop $entry
                        (br_if $entriesDone (i32.ge_u (local.get $v) (i32.const 16)))
                        (local.set $prev (i32.and (local.get $v) (i32.sub (local.get $v) (i32.const 1))))
                        (local.set $b (i32.xor
                          (i32.or
                            (i32.load8_u (i32.add (local.get $tab) (local.get $prev)))
                            (i32.shl (i32.load8_u offset=16 (i32.add (local.get $tab) (local.get $prev))) (i32.const 8)))
                          (i32.load16_u offset=8576
                            (i32.shl (i32.add (i32.shl (local.get $i) (i32.const 2)) (i32.ctz (local.get $v))) (i32.const 1)))))
                        (i32.store8 (i32.add (local.get $tab) (local.get $v)) (local.get $b))
                        (i32.store8 offset=16 (i32.add (local.get $tab) (local.get $v)) (i32.shr_u (local.get $b) (i32.const 8)))
                        (local.set $v (i32.add (local.get $v) (i32.const 1)))
                        (br $entry)))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br $table)))
                (local.set $l0 (v128.load offset=8448 (i32.const 0)))
                (local.set $h0 (v128.load offset=8464 (i32.const 0)))
                (local.set $l1 (v128.load offset=8480 (i32.const 0)))
                (local.set $h1 (v128.load offset=8496 (i32.const 0)))
                (local.set $l2 (v128.load offset=8512 (i32.const 0)))
                (local.set $h2 (v128.load offset=8528 (i32.const 0)))
                (local.set $l3 (v128.load offset=8544 (i32.const 0)))
                (local.set $h3 (v128.load offset=8560 (i32.const 0)))
                (local.set $src (i32.add (local.get $in) (i32.mul (local.get $t) (local.get $stride))))
                (local.set $p (i32.const 0))
                (block $posDone
                  (loop $pos
                    (br_if $posDone (i32.ge_u (local.get $p) (local.get $len)))
                    (local.set $x0 (v128.load (i32.add (local.get $src) (local.get $p))))
                    (local.set $x1 (v128.load offset=16 (i32.add (local.get $src) (local.get $p))))
                    ;; Low bytes of the 16 words into $pl, high bytes into $ph.
                    (local.set $pl (i8x16.shuffle 0 2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 (local.get $x0) (local.get $x1)))
                    (local.set $ph (i8x16.shuffle 1 3 5 7 9 11 13 15 17 19 21 23 25 27 29 31 (local.get $x0) (local.get $x1)))
                    (local.set $n0 (v128.and (local.get $pl) (local.get $m)))
                    (local.set $n1 (v128.and (i16x8.shr_u (local.get $pl) (i32.const 4)) (local.get $m)))
                    (local.set $n2 (v128.and (local.get $ph) (local.get $m)))
                    (local.set $n3 (v128.and (i16x8.shr_u (local.get $ph) (i32.const 4)) (local.get $m)))
                    (local.set $pl (v128.xor
                      (v128.xor (i8x16.swizzle (local.get $l0) (local.get $n0)) (i8x16.swizzle (local.get $l1) (local.get $n1)))
                      (v128.xor (i8x16.swizzle (local.get $l2) (local.get $n2)) (i8x16.swizzle (local.get $l3) (local.get $n3)))))
                    (local.set $ph (v128.xor
                      (v128.xor (i8x16.swizzle (local.get $h0) (local.get $n0)) (i8x16.swizzle (local.get $h1) (local.get $n1)))
                      (v128.xor (i8x16.swizzle (local.get $h2) (local.get $n2)) (i8x16.swizzle (local.get $h3) (local.get $n3)))))
                    ;; Interleave back into words and add into the output.
                    (v128.store (i32.add (local.get $dst) (local.get $p))
                      (v128.xor (v128.load (i32.add (local.get $dst) (local.get $p)))
                        (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $pl) (local.get $ph))))
                    (v128.store offset=16 (i32.add (local.get $dst) (local.get $p))
                      (v128.xor (v128.load offset=16 (i32.add (local.get $dst) (local.get $p)))
                        (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $pl) (local.get $ph))))
                    (local.set $p (i32.add (local.get $p) (i32.const 32)))
                    (br $pos)))))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $input)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $output)))))
