/// Max pooling with a square window and stride equal to the window. Keeps the arg-max (one byte) per output.
public struct MaxPool2d: Layer {
    /// Window size and stride.
    public let size: Int
    private var argmax: [UInt8] = []
    private var inputShape: [Int] = []

    /// Creates a pooling layer with a `size × size` window (1...15).
    public init(size: Int) {
        precondition(size >= 1 && size <= 15, "MaxPool2d size must be in 1...15, got \(size)")
        self.size = size
    }

    public var name: String { "maxpool\(size)" }

    /// An integer that orders like the float: ±magnitude bits, so −0 and +0 are equal (NaNs lie beyond ±∞).
    @inline(__always) static func ordered(_ x: Float) -> Int64 {
        let b = Int32(bitPattern: x.bitPattern)
        let m = b &>> 31
        return Int64(((b & 0x7FFF_FFFF) ^ m) &- m)
    }

    /// The float whose `ordered` value is `o` (a zero comes back as +0).
    @inline(__always) static func float(ordered o: Int64) -> Float {
        let v = Int32(truncatingIfNeeded: o)
        let m = v &>> 31
        let magnitude = (v ^ m) &- m
        return Float(bitPattern: UInt32(bitPattern: magnitude | (m & Int32.min)))
    }

    /// Replaces (`best`, `index`) by (`x`, `i`) when `x > best`, without a branch.
    @inline(__always) static func keepLarger(_ best: inout Int64, _ index: inout Int64, _ x: Int64, _ i: Int64) {
        let take = (best &- x) &>> 63  // −1 when x > best (no overflow: both fit in 32 bits)
        best ^= (best ^ x) & take
        index ^= (index ^ i) & take
    }
    public func outputShape(for input: [Int]) -> [Int] {
        precondition(
            input.count == 3 && input[1] >= size && input[2] >= size,
            "MaxPool2d(\(size)) expects [C, H, W] with H, W ≥ \(size), got \(input)")
        return [input[0], input[1] / size, input[2] / size]
    }
    public var savedBytes: Int { argmax.count }
    public mutating func releaseSaved() { argmax = [] }
    public mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch {
        let os = outputShape(for: x.shape)
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = (os[1], os[2])
        let bsz = x.count
        var y = [Float](repeating: 0, count: bsz * c * oh * ow)
        var am = [UInt8](repeating: 0, count: context.training ? y.count : 0)
        if size == 2 {
            x.values.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    am.withUnsafeMutableBufferPointer { ap in
                        let training = context.training
                        var o = 0
                        for plane in 0..<(bsz * c) {
                            let base = xp.baseAddress! + plane * h * w
                            for oy in 0..<oh {
                                let r0 = base + 2 * oy * w
                                let r1 = r0 + w
                                for ox in 0..<ow {
                                    // Branch-free: which element wins is data-dependent and unpredictable, so
                                    // branches (which the compiler makes of float compares) mispredict often.
                                    // Floats are compared as order-preserving integers; ties keep the first.
                                    var best = MaxPool2d.ordered(r0[2 * ox])
                                    var bi: Int64 = 0
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r0[2 * ox + 1]), 1)
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r1[2 * ox]), 2)
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r1[2 * ox + 1]), 3)
                                    yp[o] = MaxPool2d.float(ordered: best)
                                    if training { ap[o] = UInt8(truncatingIfNeeded: bi) }
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        } else {
            x.values.withUnsafeBufferPointer { xp in
                var o = 0
                for n in 0..<bsz {
                    for ch in 0..<c {
                        let plane = xp.baseAddress! + (n * c + ch) * h * w
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var best = -Float.infinity
                                var bi = 0
                                for dy in 0..<size {
                                    for dx in 0..<size {
                                        let v = plane[(oy * size + dy) * w + ox * size + dx]
                                        if v > best || (bi == 0 && dy == 0 && dx == 0) {
                                            best = v
                                            bi = dy * size + dx
                                        }
                                    }
                                }
                                y[o] = best
                                if context.training { am[o] = UInt8(bi) }
                                o += 1
                            }
                        }
                    }
                }
            }
        }
        if context.training {
            argmax = am
            inputShape = x.shape
        }
        return Batch(values: y, count: bsz, shape: os)
    }

    public mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    {
        defer { argmax = [] }
        guard needsInputGradient else { return nil }
        precondition(argmax.count == dy.values.count, "MaxPool2d.backward without a matching forward pass")
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let (oh, ow) = (dy.shape[1], dy.shape[2])
        var dx = [Float](repeating: 0, count: dy.count * c * h * w)
        var o = 0
        for n in 0..<dy.count {
            for ch in 0..<c {
                let base = (n * c + ch) * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let bi = Int(argmax[o])
                        dx[base + (oy * size + bi / size) * w + ox * size + bi % size] += dy.values[o]
                        o += 1
                    }
                }
            }
        }
        return Batch(values: dx, count: dy.count, shape: inputShape)
    }
}
