import APTCore

/// How a quantised tensor's codes map back to reals.
public enum TensorScale: Hashable, Sendable {
    /// value = code · scale, scale a finite non-negative float32.
    case float32(Float)
    /// value = code · 2^exponent.
    case powerOfTwo(exponent: Int8)

    /// The multiplier.
    public var value: Float {
        switch self {
        case .float32(let s): return s
        case .powerOfTwo(let e): return Float(sign: .plus, exponent: Int(e), significand: 1)
        }
    }
}

/// Which scale a sender picks.
public enum ScaleKind: String, Sendable, Codable, CaseIterable {
    /// A float32 scale: `maxAbs / (2^(b−1) − 1)`, the tightest grid.
    case float32
    /// A power-of-two scale: the smallest `2^e` that covers the range (shift-only dequantisation).
    case powerOfTwo
}

/// One layer's tensor on the wire: symmetric codes of 1…16 bits, bit-packed, or (since protocol 2.1) IEEE
/// binary32 values (`bits == 32`, what a float32 node trains and sends); dense or top-k sparse.
///
/// For `bits ≥ 2` codes lie in `[−(2^(b−1) − 1), 2^(b−1) − 1]`; for `bits == 1` a code is −1 or +1 (the
/// stored bit 0 or 1). At 32 bits each stored word is a finite binary32 value, multiplied by the (float32)
/// scale. Sparse tensors carry the sorted indices of the values kept; the others are zero.
public struct QuantizedTensor: Hashable, Sendable {
    /// Index of the layer (parameter tensor) in the model description.
    public var layer: UInt16
    /// Dense element count.
    public var count: Int
    /// Bits per code, 1…16, or 32 for binary32 values (`float32Bits`).
    public var bits: Int
    /// Code-to-real scale.
    public var scale: TensorScale
    /// Sorted, strictly increasing indices of the stored values; nil for a dense tensor.
    public var indices: [UInt32]?
    /// The codes, bit-packed at `bits` each exactly as on the wire: `count` of them dense, `indices.count`
    /// sparse. A decoded tensor holds its codes in this form only, so its memory is its wire size.
    public var packedCodes: PackedCodes

    /// Creates a tensor from codes (shape rules checked: code count, code range).
    public init(layer: UInt16, count: Int, bits: Int, scale: TensorScale, indices: [UInt32]?, codes: [Int32]) {
        precondition((1...16).contains(bits), "bits must be in 1...16, got \(bits)")
        precondition(codes.count == (indices?.count ?? count), "code count does not match")
        let m = Self.maxCode(bits: bits)
        precondition(codes.allSatisfy { abs($0) <= m && (bits > 1 || $0 != 0) }, "codes outside the \(bits)-bit range")
        self.init(
            layer: layer, count: count, bits: bits, scale: scale, indices: indices,
            packedCodes: PackedCodes(packing: codes, bits: bits))
    }

    /// Creates a tensor from codes already packed and checked.
    init(layer: UInt16, count: Int, bits: Int, scale: TensorScale, indices: [UInt32]?, packedCodes: PackedCodes) {
        self.layer = layer
        self.count = count
        self.bits = bits
        self.scale = scale
        self.indices = indices
        self.packedCodes = packedCodes
    }

    /// The width that marks a tensor of binary32 values rather than integer codes.
    public static let float32Bits = 32

    /// Whether the stored values are binary32 numbers rather than integer codes.
    public var isFloat32: Bool { bits == Self.float32Bits }

    /// A tensor of binary32 values at scale 1, dense (`indices` nil: `values.count` elements) or sparse (`count`
    /// elements of which `indices` are stored). Every value must be finite.
    public init(layer: UInt16, count: Int, float32 values: [Float], indices: [UInt32]? = nil) {
        precondition(values.count == (indices?.count ?? count), "value count does not match")
        precondition(values.allSatisfy(\.isFinite), "float32 tensor values must be finite")
        var bytes = [UInt8](repeating: 0, count: 4 * values.count)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() {
                raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
        }
        self.init(
            layer: layer, count: count, bits: Self.float32Bits, scale: .float32(1), indices: indices,
            packedCodes: PackedCodes(bits: Self.float32Bits, count: values.count, bytes: bytes))
    }

    /// Stored value `i` (of `indices.count` when sparse, else of `count`) as a real: `code · scale`, or the
    /// binary32 value times the scale.
    @inlinable
    public func storedValue(at i: Int) -> Float {
        let raw = packedCodes.code(at: i)
        return (isFloat32 ? Float(bitPattern: UInt32(bitPattern: raw)) : Float(raw)) * scale.value
    }

    /// The codes, unpacked (allocates four bytes per code: for tests and tools, not for aggregation). At 32
    /// bits these are the binary32 bit patterns.
    public var codes: [Int32] {
        var out = [Int32](repeating: 0, count: packedCodes.count)
        _ = packedCodes.forEachCode { i, c in out[i] = c }
        return out
    }

    /// Largest code magnitude for `bits`.
    public static func maxCode(bits: Int) -> Int32 { bits == 1 ? 1 : FixedPointFormat.maxCode(bits: bits) }

    /// The dense real values, each `Float(code) * scale` in float32.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { accumulate(into: $0, weight: 1) }
        return out
    }

    /// Adds `weight · value` of every element to `output[i]` (`output.count == count`), straight from the
    /// packed codes: no dense copy of the tensor is made. In float32: `output[i] += Float(code) · (weight ·
    /// scale)`, the product `weight · scale` rounded once. This is how an aggregator folds a node's delta into
    /// a running sum.
    public func accumulate(into output: UnsafeMutableBufferPointer<Float>, weight: Float) {
        precondition(output.count == count, "accumulate: output has \(output.count) elements, tensor \(count)")
        let factor = weight * scale.value
        if indices == nil && !isFloat32 {
            packedCodes.accumulate(into: output, factor: factor)
        } else {
            accumulateEach(into: output, factor: factor)
        }
    }

    /// Adds `weight · value` of every element to `output[i]` in binary64 (`output.count == count`): each term is
    /// `Double(stored value) · (weight · scale)`, so a sum of several tensors differs with their order only in its
    /// last bits, far below a binary32 step — what makes a fleet's aggregate the same whatever order its updates
    /// arrive in, once rounded to binary32.
    public func accumulate(into output: UnsafeMutableBufferPointer<Double>, weight: Double) {
        precondition(output.count == count, "accumulate: output has \(output.count) elements, tensor \(count)")
        let factor = weight * Double(scale.value)
        if indices == nil && !isFloat32 {
            packedCodes.accumulate(into: output, factor: factor)
        } else {
            accumulateEach(into: output, factor: factor)
        }
    }

    /// The sparse and binary32 forms of `accumulate`: one stored value at a time, to its index.
    @inline(__always)
    func accumulateEach<T: BinaryFloatingPoint>(into output: UnsafeMutableBufferPointer<T>, factor: T) {
        let float32 = isFloat32
        let positions = indices ?? []
        positions.withUnsafeBufferPointer { ip in
            _ = packedCodes.forEachCode { i, c in
                let v = float32 ? T(Float(bitPattern: UInt32(bitPattern: c))) : T(c)
                output[ip.isEmpty ? i : Int(ip[i])] += v * factor
            }
        }
    }

    /// Quantises `values`: picks the scale from the range of the values kept, rounds each, and with `topK`
    /// keeps only the `topK` largest magnitudes.
    public static func quantize(
        _ values: [Float], layer: UInt16, bits: Int, scaleKind: ScaleKind = .float32,
        rounding: RoundingMode = .nearest, topK: Int? = nil, random: inout RandomSource
    ) -> QuantizedTensor {
        precondition((1...16).contains(bits), "bits must be in 1...16, got \(bits)")
        var kept: [Float]
        var indices: [UInt32]? = nil
        if let k = topK, k < values.count {
            let chosen = largestMagnitudes(values, k: max(k, 0))
            indices = chosen.map { UInt32($0) }
            kept = chosen.map { values[$0] }
        } else {
            kept = values
        }
        var maxAbs: Float = 0
        for v in kept where v.isFinite { maxAbs = max(maxAbs, abs(v)) }
        let m = maxCode(bits: bits)
        let scale: TensorScale
        switch scaleKind {
        case _ where maxAbs == 0:
            // All zero: scale 0 whatever kind was asked (a power of two cannot be 0, and 1-bit codes are ±1).
            scale = .float32(0)
        case .float32:
            scale = .float32(maxAbs > 0 ? maxAbs / Float(m) : 0)
        case .powerOfTwo:
            if maxAbs > 0 {
                var e = Int((maxAbs / Float(m)).exponent)
                while Float(m) * Float(sign: .plus, exponent: e, significand: 1) < maxAbs { e += 1 }
                while e > -126 && Float(m) * Float(sign: .plus, exponent: e - 1, significand: 1) >= maxAbs { e -= 1 }
                scale = .powerOfTwo(exponent: Int8(clamping: e))
            } else {
                scale = .powerOfTwo(exponent: 0)
            }
        }
        let s = scale.value
        let inv: Float = s > 0 ? 1 / s : 0
        var codes = [Int32](repeating: 0, count: kept.count)
        for i in kept.indices {
            let x = kept[i].isFinite ? kept[i] * inv : 0
            if bits == 1 {
                switch rounding {
                case .nearest: codes[i] = x >= 0 ? 1 : -1
                case .stochastic:
                    let p = (min(max(x, -1), 1) + 1) / 2
                    codes[i] = random.nextUnitFloat() < p ? 1 : -1
                }
            } else {
                // Clamp first: the rounding helpers are exact below 2^22.
                let c = min(max(x, -Float(m)), Float(m))
                let r: Float
                switch rounding {
                case .nearest: r = roundHalfEven(c)
                case .stochastic: r = min(floorSmall(c + random.nextUnitFloat()), Float(m))
                }
                codes[i] = Int32(r)
            }
        }
        return QuantizedTensor(
            layer: layer, count: values.count, bits: bits, scale: scale, indices: indices,
            codes: codes)
    }

    /// A tensor of binary32 `values` (all finite), dense, or with `topK` only the `topK` largest magnitudes
    /// (sparse). What a float32 node sends as its delta.
    public static func float32(_ values: [Float], layer: UInt16, topK: Int? = nil) -> QuantizedTensor {
        guard let k = topK, k < values.count else {
            return QuantizedTensor(layer: layer, count: values.count, float32: values)
        }
        let chosen = largestMagnitudes(values, k: max(k, 0))
        return QuantizedTensor(
            layer: layer, count: values.count, float32: chosen.map { values[$0] }, indices: chosen.map { UInt32($0) })
    }

    /// Indices of the `k` largest |values| (ties to the lower index), ascending. Average O(n): the k-th
    /// magnitude is found by quickselect, then one pass collects.
    static func largestMagnitudes(_ values: [Float], k: Int) -> [Int] {
        guard k > 0 else { return [] }
        var mags = values.map { $0.isFinite ? abs($0) : 0 }
        // Quickselect for the k-th largest magnitude.
        var lo = 0
        var hi = mags.count - 1
        let target = k - 1
        // Pivots are random to keep the average linear; the result does not depend on them.
        var random = RandomSource(seed: 0x9E37_79B9_7F4A_7C15)
        while lo < hi {
            let pivot = mags[lo + Int(random.next() % UInt64(hi - lo + 1))]
            var i = lo
            var j = hi
            while i <= j {
                while mags[i] > pivot { i += 1 }
                while mags[j] < pivot { j -= 1 }
                if i <= j {
                    mags.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { break }
        }
        let threshold = mags[target]
        var above = 0
        for v in values where v.isFinite && abs(v) > threshold { above += 1 }
        var equalNeeded = k - above
        var out: [Int] = []
        out.reserveCapacity(k)
        for (i, v) in values.enumerated() {
            let a = v.isFinite ? abs(v) : 0
            if a > threshold {
                out.append(i)
            } else if a == threshold && equalNeeded > 0 {
                out.append(i)
                equalNeeded -= 1
            }
        }
        return out
    }

    // MARK: Wire form

    static let flagPowerOfTwo: UInt8 = 1
    static let flagSparse: UInt8 = 2

    /// Appends the wire form (docs/protocol.md, "Quantised tensor").
    public func encode(into w: inout ByteWriter) {
        w.u16(layer)
        w.u32(UInt32(count))
        w.u8(UInt8(bits))
        var flags: UInt8 = 0
        if case .powerOfTwo = scale { flags |= Self.flagPowerOfTwo }
        if indices != nil { flags |= Self.flagSparse }
        w.u8(flags)
        switch scale {
        case .float32(let s): w.f32(s)
        case .powerOfTwo(let e): w.i8(e)
        }
        if let indices {
            w.u32(UInt32(indices.count))
            var prev: Int64 = -1
            for idx in indices {
                w.varint(UInt64(Int64(idx) - prev - 1))
                prev = Int64(idx)
            }
        }
        w.raw(packedCodes.bytes)
    }

    /// Reads one tensor, validating bits, flags, scale, counts (against `maxElements`) and indices before
    /// allocating anything sized by the input.
    public static func decode(from r: inout ByteReader, maxElements: Int) throws(WireError) -> QuantizedTensor {
        let layer = try r.u16("tensor.layer")
        let count = Int(try r.u32("tensor.count"))
        guard count <= maxElements else {
            throw WireError.tooLarge(field: "tensor.count", declared: count, limit: maxElements)
        }
        let bits = Int(try r.u8("tensor.bits"))
        guard (1...16).contains(bits) || bits == float32Bits else {
            throw WireError.invalidValue(field: "tensor.bits", reason: "\(bits) is neither in 1...16 nor 32")
        }
        let flags = try r.u8("tensor.flags")
        guard flags & ~(flagPowerOfTwo | flagSparse) == 0 else {
            throw WireError.invalidValue(field: "tensor.flags", reason: "unknown flag bits \(flags)")
        }
        if bits == float32Bits && flags & flagPowerOfTwo != 0 {
            throw WireError.invalidValue(
                field: "tensor.flags", reason: "a float32 tensor (32 bits) has a float32 scale, not a power of two")
        }
        let scale: TensorScale
        if flags & flagPowerOfTwo != 0 {
            scale = .powerOfTwo(exponent: try r.i8("tensor.scale"))
        } else {
            let s = try r.f32("tensor.scale")
            guard s.isFinite, s >= 0 else {
                throw WireError.invalidValue(field: "tensor.scale", reason: "\(s) is not a finite non-negative number")
            }
            scale = .float32(s)
        }
        var indices: [UInt32]? = nil
        var n = count
        if flags & flagSparse != 0 {
            let k = Int(try r.u32("tensor.k"))
            guard k <= count else {
                throw WireError.invalidValue(field: "tensor.k", reason: "\(k) exceeds count \(count)")
            }
            guard k <= r.remaining else {
                throw WireError.truncated(field: "tensor.indices", offset: r.offset, needed: k, available: r.remaining)
            }
            var idx = [UInt32]()
            idx.reserveCapacity(k)
            var prev: Int64 = -1
            for _ in 0..<k {
                let gap = try r.varint("tensor.index")
                let next = prev + 1 + Int64(clamping: gap)
                guard gap < UInt64(count), next < Int64(count) else {
                    throw WireError.invalidValue(field: "tensor.index", reason: "index beyond count \(count)")
                }
                idx.append(UInt32(next))
                prev = next
            }
            indices = idx
            n = k
        }
        let packed = try r.raw(PackedCodes.byteCount(count: n, bits: bits), "tensor.values")
        let codes = PackedCodes(bits: bits, count: n, bytes: packed)
        try validate(codes)
        return QuantizedTensor(
            layer: layer, count: count, bits: bits, scale: scale, indices: indices, packedCodes: codes)
    }

    /// Packs codes LSB-first, `bits` each (two's complement; for 1 bit, −1 → 0 and +1 → 1).
    public static func pack(_ codes: [Int32], bits: Int) -> [UInt8] {
        PackedCodes.pack(codes, bits: bits)
    }

    /// Checks packed codes from the wire: the most negative two's-complement code (outside the symmetric
    /// range) and non-zero padding bits are errors. Nothing is allocated.
    static func validate(_ codes: PackedCodes) throws(WireError) {
        if codes.bits == float32Bits {
            for i in 0..<codes.count where !Float(bitPattern: UInt32(bitPattern: codes.code(at: i))).isFinite {
                throw WireError.invalidValue(field: "tensor.values", reason: "value \(i) is not a finite number")
            }
            return
        }
        let lowest = Int64(-maxCode(bits: codes.bits))
        var outOfRange: Int64? = nil
        codes.forEachCodeQuickly { _, c in
            if c < lowest, outOfRange == nil { outOfRange = c }
        }
        let paddingIsZero = codes.paddingIsZero
        if let v = outOfRange {
            throw WireError.invalidValue(
                field: "tensor.values", reason: "code \(v) outside the symmetric \(codes.bits)-bit range")
        }
        guard paddingIsZero else {
            throw WireError.invalidValue(field: "tensor.values", reason: "non-zero padding bits")
        }
    }

    /// Unpacks `count` codes from wire bytes, with the checks of the decoder.
    public static func unpack(_ packed: [UInt8], count: Int, bits: Int) throws(WireError) -> [Int32] {
        guard packed.count == PackedCodes.byteCount(count: count, bits: bits) else {
            throw WireError.invalidValue(
                field: "tensor.values", reason: "\(packed.count) bytes for \(count) codes of \(bits) bits")
        }
        let codes = PackedCodes(bits: bits, count: count, bytes: packed)
        try validate(codes)
        var out = [Int32](repeating: 0, count: count)
        _ = codes.forEachCode { i, c in out[i] = c }
        return out
    }
}

/// Error feedback for a sender: what quantisation dropped from one delta is added to the next.
public struct ErrorFeedback: Sendable {
    /// Residual per layer.
    public private(set) var residuals: [UInt16: [Float]] = [:]

    /// An empty residual store.
    public init() {}

    /// A store holding `residuals` (restored from a node's state dir).
    public init(residuals: [UInt16: [Float]]) { self.residuals = residuals }

    /// Quantises `delta + residual`, keeps the new residual, returns the tensor to send.
    public mutating func compress(
        _ delta: [Float], layer: UInt16, bits: Int, scaleKind: ScaleKind = .float32,
        rounding: RoundingMode = .nearest, topK: Int? = nil, random: inout RandomSource
    ) -> QuantizedTensor {
        var x = delta
        if let r = residuals[layer], r.count == x.count {
            for i in x.indices { x[i] += r[i] }
        }
        let t = QuantizedTensor.quantize(
            x, layer: layer, bits: bits, scaleKind: scaleKind, rounding: rounding,
            topK: topK, random: &random)
        let back = t.dequantized()
        for i in x.indices { x[i] -= back[i] }
        residuals[layer] = x
        return t
    }
}
