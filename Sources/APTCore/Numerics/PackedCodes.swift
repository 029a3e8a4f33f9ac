/// Signed integer codes of `bits` bits each, packed LSB-first into bytes with no padding between codes.
///
/// The engine keeps the activations it saves for the backward pass this way when their codes are narrower
/// than a byte (a 6-bit code takes six bits, not eight), and the wire codec uses the same bit order. Codes are
/// stored in two's complement; at 1 bit the codes are ±1, stored as 0 for −1 and 1 for +1.
public struct PackedCodes: Sendable, Hashable {
    /// Bits per code, 1...16 (or 32 for raw 32-bit words wrapped by `init(bits:count:bytes:)`, such as the
    /// wire's binary32 values).
    public let bits: Int
    /// Number of codes.
    public let count: Int
    /// The packed bytes, `(count · bits + 7) / 8` of them; padding bits in the last byte are zero.
    public let bytes: [UInt8]

    /// Bytes that `count` codes of `bits` bits take packed.
    @inlinable
    public static func byteCount(count: Int, bits: Int) -> Int { (count * bits + 7) / 8 }

    /// Packs `codes`, each of which must fit `bits` bits (`bits` in 1...16).
    @inlinable
    public init<C: Collection>(packing codes: C, bits: Int) where C.Element: BinaryInteger {
        precondition((1...16).contains(bits), "PackedCodes supports 1...16 bits, got \(bits)")
        self.bits = bits
        self.count = codes.count
        self.bytes = PackedCodes.pack(codes, bits: bits)
    }

    /// Packs byte codes of 2...8 bits; eight codes at a time fill exactly `bits` bytes.
    public init(packing codes: [Int8], bits: Int) {
        precondition((2...8).contains(bits), "PackedCodes(packing: [Int8]) supports 2...8 bits, got \(bits)")
        self.bits = bits
        self.count = codes.count
        var out = [UInt8](repeating: 0, count: PackedCodes.byteCount(count: codes.count, bits: bits))
        let groups = codes.count / 8
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        codes.withUnsafeBufferPointer { cp in
            out.withUnsafeMutableBufferPointer { op in
                guard let base = op.baseAddress else { return }
                let raw = UnsafeMutableRawPointer(base)
                for g in 0..<groups {
                    var acc: UInt64 = 0
                    for j in 0..<8 {
                        acc |= (UInt64(truncatingIfNeeded: Int64(cp[g * 8 + j])) & mask) << UInt64(j * bits)
                    }
                    if g * bits + 8 <= op.count {
                        // One 8-byte store; its top bytes are zero and the next group's store overwrites them.
                        raw.storeBytes(of: acc.littleEndian, toByteOffset: g * bits, as: UInt64.self)
                    } else {
                        for b in 0..<bits { op[g * bits + b] = UInt8(truncatingIfNeeded: acc >> UInt64(8 * b)) }
                    }
                }
            }
        }
        let tail = PackedCodes.pack(codes[(groups * 8)...], bits: bits)
        for (i, b) in tail.enumerated() { out[groups * bits + i] = b }
        self.bytes = out
    }

    /// Wraps bytes already packed (the caller has checked their length); `bits` is 1...16, or 32 for raw
    /// little-endian 32-bit words.
    @inlinable
    public init(bits: Int, count: Int, bytes: [UInt8]) {
        precondition(
            ((1...16).contains(bits) || bits == 32) && bytes.count == PackedCodes.byteCount(count: count, bits: bits),
            "PackedCodes: \(bytes.count) bytes cannot hold \(count) codes of \(bits) bits")
        self.bits = bits
        self.count = count
        self.bytes = bytes
    }

    /// Packs `codes` LSB-first, `bits` each.
    @inlinable
    public static func pack<C: Collection>(_ codes: C, bits: Int) -> [UInt8] where C.Element: BinaryInteger {
        var out = [UInt8](repeating: 0, count: byteCount(count: codes.count, bits: bits))
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        out.withUnsafeMutableBufferPointer { op in
            var acc: UInt64 = 0
            var nbits = 0
            var o = 0
            for c in codes {
                let v: UInt64 = bits == 1 ? (c > 0 ? 1 : 0) : UInt64(truncatingIfNeeded: Int64(c)) & mask
                acc |= v << UInt64(nbits)
                nbits += bits
                while nbits >= 8 {
                    op[o] = UInt8(truncatingIfNeeded: acc)
                    o += 1
                    acc >>= 8
                    nbits -= 8
                }
            }
            if nbits > 0 { op[o] = UInt8(truncatingIfNeeded: acc) }
        }
        return out
    }

    /// Calls `body(i, code)` for every code in order, sign-extended (±1 at 1 bit); returns whether the padding
    /// bits after the last code are zero.
    @inlinable
    public func forEachCode(_ body: (Int, Int32) throws -> Void) rethrows -> Bool {
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        let signBit: UInt64 = 1 << UInt64(bits - 1)
        let bits = self.bits
        return try bytes.withUnsafeBufferPointer { bp in
            var acc: UInt64 = 0
            var nbits = 0
            var i = 0
            for c in 0..<count {
                while nbits < bits {
                    acc |= UInt64(bp[i]) << UInt64(nbits)
                    i += 1
                    nbits += 8
                }
                let raw = acc & mask
                acc >>= UInt64(bits)
                nbits -= bits
                let code: Int32
                if bits == 1 {
                    code = raw == 1 ? 1 : -1
                } else {
                    code =
                        raw & signBit != 0
                        ? Int32(truncatingIfNeeded: Int64(raw) - Int64(1 << UInt64(bits)))
                        : Int32(truncatingIfNeeded: raw)
                }
                try body(c, code)
            }
            return acc == 0
        }
    }

    /// The codes as bytes (for `bits` ≤ 8).
    public func unpackedInt8() -> [Int8] {
        var out = [Int8](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { unpackInt8(from: 0, count: count, into: $0.baseAddress!) }
        return out
    }

    /// Writes codes `start ..< start + n` as bytes to `out` (for `bits` ≤ 8): one image of a saved batch at a
    /// time, without unpacking the rest.
    public func unpackInt8(from start: Int, count n: Int, into out: UnsafeMutablePointer<Int8>) {
        precondition(bits >= 2 && bits <= 8, "PackedCodes.unpackInt8 needs codes of 2...8 bits, these have \(bits)")
        precondition(start >= 0 && n >= 0 && start + n <= count, "PackedCodes.unpackInt8: range outside the codes")
        let bits = self.bits
        let shift = UInt64(64 - bits)
        bytes.withUnsafeBufferPointer { bp in
            /// Code `c`, sign-extended, from the two bytes that hold it.
            func code(_ c: Int) -> Int8 {
                let bit = c * bits
                let byte = bit >> 3
                var acc = UInt64(bp[byte])
                if byte + 1 < bp.count { acc |= UInt64(bp[byte + 1]) << 8 }
                let top = (acc >> UInt64(bit & 7)) << shift
                return Int8(truncatingIfNeeded: Int64(bitPattern: top) >> shift)
            }
            var c = start
            let end = start + n
            while c < end && c & 7 != 0 {
                out[c - start] = code(c)
                c += 1
            }
            // Eight codes at a time come from exactly `bits` bytes; shifting each code to the top of the word and
            // back down (arithmetically) sign-extends it.
            let raw = UnsafeRawPointer(bp.baseAddress)
            while c + 8 <= end {
                let g = c >> 3
                var acc: UInt64 = 0
                if let raw, g * bits + 8 <= bp.count {
                    // One 8-byte load; the bits past this group's `bits` bytes are never looked at.
                    acc = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: g * bits, as: UInt64.self))
                } else {
                    for b in 0..<bits { acc |= UInt64(bp[g * bits + b]) << UInt64(8 * b) }
                }
                let o = out + (c - start)
                for j in 0..<8 {
                    let top = acc << UInt64(64 - (j + 1) * bits)
                    o[j] = Int8(truncatingIfNeeded: Int64(bitPattern: top) >> shift)
                }
                c += 8
            }
            while c < end {
                out[c - start] = code(c)
                c += 1
            }
        }
    }

    /// Adds `Float(code) · factor` to `output[i]` for code `i` (`output.count == count`), eight codes at a time
    /// from one or two unaligned word loads: how the wire codec folds a node's delta into an aggregate without
    /// unpacking it.
    public func accumulate(into output: UnsafeMutableBufferPointer<Float>, factor: Float) {
        accumulateCodes(into: output, factor: factor)
    }

    /// `accumulate(into:factor:)` into binary64 sums: `Double(code) · factor` (how a coordinator keeps its FedAvg
    /// sums independent of the order updates arrive in).
    public func accumulate(into output: UnsafeMutableBufferPointer<Double>, factor: Double) {
        accumulateCodes(into: output, factor: factor)
    }

    @inline(__always)
    func accumulateCodes<T: BinaryFloatingPoint>(into output: UnsafeMutableBufferPointer<T>, factor: T) {
        precondition(output.count == count, "accumulate: output has \(output.count) elements, codes \(count)")
        let bits = self.bits
        let groups = count / 8
        var g = 0
        bytes.withUnsafeBufferPointer { bp in
            guard let base = bp.baseAddress, let out = output.baseAddress else { return }
            let raw = UnsafeRawPointer(base)
            let shift = UInt64(64 - bits)
            if bits == 1 {
                while g < groups {
                    let byte = bp[g]
                    for j in 0..<8 { out[g * 8 + j] += T(Int32((byte >> UInt8(j)) & 1) * 2 - 1) * factor }
                    g += 1
                }
            } else if bits <= 8 {
                // Eight codes are exactly `bits` bytes; one 8-byte load holds them.
                while g < groups && g * bits + 8 <= bp.count {
                    let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: g * bits, as: UInt64.self))
                    for j in 0..<8 {
                        let code = Int64(bitPattern: word << UInt64(64 - (j + 1) * bits)) >> shift
                        out[g * 8 + j] += T(code) * factor
                    }
                    g += 1
                }
            } else {
                // 9...16 bits: eight codes span `bits` ≤ 16 bytes, two 8-byte loads.
                while g < groups && g * bits + 16 <= bp.count {
                    let lo = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: g * bits, as: UInt64.self))
                    let hi = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: g * bits + 8, as: UInt64.self))
                    for j in 0..<8 {
                        let code = Int64(bitPattern: PackedCodes.field(j, lo, hi, bits: bits) << shift) >> shift
                        out[g * 8 + j] += T(code) * factor
                    }
                    g += 1
                }
            }
        }
        guard g * 8 < count else { return }
        // The last few codes (whose word loads would pass the end of the bytes) one at a time.
        let tail = PackedCodes(bits: bits, count: count - g * 8, bytes: Array(bytes[(g * bits)...]))
        let first = g * 8
        _ = tail.forEachCode { i, c in output[first + i] += T(c) * factor }
    }

    /// Calls `body(i, code)` for every code in order, sign-extended (±1 at 1 bit): `forEachCode` eight codes at a
    /// time from word loads, for the passes a coordinator makes over every update (validation, norms).
    @inline(__always)
    public func forEachCodeQuickly(_ body: (Int, Int64) -> Void) {
        let bits = self.bits
        guard bits >= 2 && bits <= 16 else {
            _ = forEachCode { i, c in body(i, Int64(c)) }
            return
        }
        let groups = count / 8
        var g = 0
        bytes.withUnsafeBufferPointer { bp in
            guard let base = bp.baseAddress else { return }
            let raw = UnsafeRawPointer(base)
            let shift = UInt64(64 - bits)
            while g < groups && g * bits + 16 <= bp.count {
                let lo = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: g * bits, as: UInt64.self))
                let hi = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: g * bits + 8, as: UInt64.self))
                for j in 0..<8 {
                    body(g * 8 + j, Int64(bitPattern: PackedCodes.field(j, lo, hi, bits: bits) << shift) >> shift)
                }
                g += 1
            }
        }
        guard g * 8 < count else { return }
        let tail = PackedCodes(bits: bits, count: count - g * 8, bytes: Array(bytes[(g * bits)...]))
        let first = g * 8
        _ = tail.forEachCode { i, c in body(first + i, Int64(c)) }
    }

    /// Code `j` (0...7) of a group of eight `bits`-bit codes (9...16 bits, or fewer) held in two little-endian
    /// words `lo`, `hi`, in the low bits of the result (not sign-extended, higher bits unspecified).
    @inline(__always)
    static func field(_ j: Int, _ lo: UInt64, _ hi: UInt64, bits: Int) -> UInt64 {
        let offset = j * bits
        if offset + bits <= 64 { return lo >> UInt64(offset) }
        if offset >= 64 { return hi >> UInt64(offset - 64) }
        return (lo >> UInt64(offset)) | (hi << UInt64(64 - offset))
    }

    /// Whether the padding bits after the last code (in the last byte) are zero.
    public var paddingIsZero: Bool {
        let used = (count * bits) % 8
        guard used != 0, let last = bytes.last else { return true }
        return last >> UInt8(used) == 0
    }

    /// Code `i`, sign-extended (±1 at 1 bit): random access for the coordinate-wise aggregators.
    @inlinable
    public func code(at i: Int) -> Int32 {
        precondition(i >= 0 && i < count, "code \(i) of \(count)")
        let bit = i * bits
        var word: UInt32 = 0
        let first = bit >> 3
        let last = min(bytes.count - 1, (bit + bits - 1) >> 3)
        for (k, b) in (first...last).enumerated() { word |= UInt32(bytes[b]) << UInt32(8 * k) }
        if bits == 32 { return Int32(bitPattern: word) }
        let raw = (word >> UInt32(bit & 7)) & ((1 << UInt32(bits)) - 1)
        if bits == 1 { return raw == 1 ? 1 : -1 }
        let shift = UInt32(32 - bits)
        return Int32(bitPattern: raw << shift) >> Int32(shift)
    }
}
