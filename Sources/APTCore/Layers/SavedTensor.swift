/// A layer input kept for the backward pass: fp32 values, or fixed-point codes — packed when narrower than a
/// byte, so a 6-bit activation takes six bits of memory.
struct SavedTensor: Sendable {
    enum Storage: Sendable {
        case float([Float])
        case fixed(FixedPointTensor)
        case packed(PackedCodes, format: FixedPointFormat, shape: [Int])
    }
    var storage: Storage

    /// Keeps fp32 values.
    init(float values: [Float]) { storage = .float(values) }

    /// Keeps fixed-point codes, packed when they are narrower than their byte storage.
    init(fixed t: FixedPointTensor) {
        if t.format.bits < 8, case .int8(let codes) = t.storage {
            storage = .packed(PackedCodes(packing: codes, bits: t.format.bits), format: t.format, shape: t.shape)
        } else {
            storage = .fixed(t)
        }
    }

    /// Bytes held.
    var byteCount: Int {
        switch storage {
        case .float(let a): return a.count * 4
        case .fixed(let t): return t.byteCount
        case .packed(let p, _, _): return p.bytes.count
        }
    }

    /// The kept tensor in working form (packed codes unpacked to bytes).
    var unpacked: Storage {
        switch storage {
        case .float, .fixed: return storage
        case .packed(let p, let format, let shape):
            return .fixed(FixedPointTensor(shape: shape, format: format, int8Codes: p.unpackedInt8()))
        }
    }
}
