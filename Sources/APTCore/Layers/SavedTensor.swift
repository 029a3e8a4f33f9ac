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

    /// The kept codes' format and the codes themselves: whole, or packed below a byte (a layer unpacks those a
    /// part at a time, never the whole batch). Nil for fp32 values.
    var codes: (format: FixedPointFormat, whole: FixedPointStorage?, packed: PackedCodes?)? {
        switch storage {
        case .float: return nil
        case .fixed(let t): return (t.format, t.storage, nil)
        case .packed(let p, let format, _): return (format, nil, p)
        }
    }

    /// The kept fp32 values (nil for codes).
    var floats: [Float]? {
        if case .float(let x) = storage { return x }
        return nil
    }
}
