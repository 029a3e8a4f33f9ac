/// A max-pooling layer's input error as error-bit codes, made an image at a time as the layer below asks for
/// them, so that the full-size error never exists in any form.
///
/// It holds the pooled errors (floats, one per pooling window, already masked where a ReLU below blocked them),
/// each window's arg-max, and the format that covers what survives. An image's codes are its planes with each
/// pooled error at its arg-max and zeros elsewhere, quantised in order. Every quantiser call starts at a multiple
/// of 16 elements of the whole error (values left over wait for the next plane) and only the last call ends
/// elsewhere, so stochastic rounding draws its random numbers exactly as one pass over the whole full-size error
/// would: the codes are those `Quantizer.quantize` makes of the whole tensor.
struct PooledErrorCodes: Sendable {
    /// The format of the codes.
    let format: FixedPointFormat
    /// Images in the batch.
    let count: Int
    /// Codes per image (channels × height × width of the pooling layer's input).
    let imageSize: Int
    private let errors: [Float]
    private let argmax: PackedArgmax
    private let rounding: RoundingMode
    private let (height, width, size): (Int, Int, Int)
    /// One plane's values after the up to 15 carried from the plane before.
    private var staging: [Float]
    private var carried = 0
    private var nextPlane = 0
    /// Codes made so far and not yet handed out, for elements `windowStart ..< windowStart + windowCount`.
    private var window: FixedPointStorage
    private var windowStart = 0
    private var windowCount = 0
    private var nextImage = 0

    /// Codes of the error whose pooled values are `errors` (one per window of `size × size`, planes of
    /// `height × width`, `channels` planes an image), arg-max `argmax`, at `format` with `rounding`.
    init(
        errors: consuming [Float], argmax: consuming PackedArgmax, channels: Int, height: Int, width: Int, size: Int,
        format: FixedPointFormat, rounding: RoundingMode
    ) {
        let windows = (height / size) * (width / size)
        precondition(windows > 0 && errors.count % (channels * windows) == 0, "PooledErrorCodes: shape mismatch")
        self.count = errors.count / (channels * windows)
        self.imageSize = channels * height * width
        self.errors = errors
        self.argmax = argmax
        self.format = format
        self.rounding = rounding
        (self.height, self.width, self.size) = (height, width, size)
        staging = [Float](repeating: 0, count: height * width + 16)
        let capacity = imageSize + height * width + 16
        window =
            format.bits <= 8
            ? .int8([Int8](repeating: 0, count: capacity))
            : .int16(
                [Int16](repeating: 0, count: capacity))
    }

    /// Bytes of the buffers it holds: pooled errors, arg-max, the staging plane and the code window.
    var byteCount: Int {
        errors.count * 4 + argmax.byteCount
            + PooledErrorCodes.bufferBytes(plane: height * width, image: imageSize, bits: format.bits)
    }

    /// Bytes of the staging plane and the code window for planes of `plane` and images of `image` elements
    /// (besides the pooled errors and their arg-max).
    static func bufferBytes(plane: Int, image: Int, bits: Int) -> Int {
        4 * (plane + 16) + (image + plane + 16) * (bits <= 8 ? 1 : 2)
    }

    /// The codes of the next image (images are handed out in order, each once).
    mutating func next(random: inout RandomSource) -> FixedPointStorage {
        precondition(nextImage < count, "PooledErrorCodes: all \(count) images were handed out")
        let start = nextImage * imageSize
        let end = start + imageSize
        nextImage += 1
        switch window {
        case .int8(var w):
            window = .int8([])
            let image = fill(&w, from: start, to: end, random: &random)
            window = .int8(w)
            return .int8(image)
        case .int16(var w):
            window = .int16([])
            let image = fill(&w, from: start, to: end, random: &random)
            window = .int16(w)
            return .int16(image)
        }
    }

    /// All images' codes as one tensor of shape `[count] + [channels, height, width]`.
    mutating func materialize(shape: [Int], random: inout RandomSource) -> FixedPointTensor {
        func all<T: FixedWidthInteger & SignedInteger & SIMDScalar>(_: T.Type, _ take: (FixedPointStorage) -> [T])
            -> [T]
        {
            var out = [T]()
            out.reserveCapacity(count * imageSize)
            while nextImage < count { out.append(contentsOf: take(next(random: &random))) }
            return out
        }
        let storage: FixedPointStorage
        if format.bits <= 8 {
            storage = .int8(all(Int8.self) { if case .int8(let a) = $0 { a } else { [] } })
        } else {
            storage = .int16(all(Int16.self) { if case .int16(let a) = $0 { a } else { [] } })
        }
        return FixedPointTensor(shape: [count] + shape, format: format, storage: storage)
    }

    /// Drops codes before `start`, makes codes until `end` is covered, and returns those of `start ..< end`.
    private mutating func fill<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ w: inout [T], from start: Int, to end: Int, random: inout RandomSource
    ) -> [T] {
        let total = count * imageSize
        let plane = height * width
        let (oh, ow) = (height / size, width / size)
        let windows = oh * ow
        w.withUnsafeMutableBufferPointer { wp in
            if windowStart < start {
                let drop = start - windowStart
                let keep = windowCount - drop
                if keep > 0 { wp.baseAddress!.update(from: wp.baseAddress! + drop, count: keep) }
                windowStart = start
                windowCount = max(keep, 0)
            }
            staging.withUnsafeMutableBufferPointer { sp in
                errors.withUnsafeBufferPointer { ep in
                    argmax.withReader { ap in
                        while windowStart + windowCount < end {
                            // The next plane: zeros, each pooled error at its arg-max.
                            let p = sp.baseAddress! + carried
                            p.update(repeating: 0, count: plane)
                            let o0 = nextPlane * windows
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    let a = ap[o0 + oy * ow + ox]
                                    p[(oy * size + a / size) * width + ox * size + a % size] = ep[o0 + oy * ow + ox]
                                }
                            }
                            nextPlane += 1
                            let made = windowStart + windowCount  // elements quantised so far
                            let available = carried + plane
                            let n = made + available == total ? available : available & ~15
                            _ = Quantizer.quantize(
                                UnsafeBufferPointer(rebasing: sp[0..<n]),
                                into: UnsafeMutableBufferPointer(rebasing: wp[windowCount..<(windowCount + n)]),
                                format: format, rounding: rounding, random: &random)
                            windowCount += n
                            carried = available - n
                            if carried > 0 { sp.baseAddress!.update(from: sp.baseAddress! + n, count: carried) }
                        }
                    }
                }
            }
        }
        return Array(w[(start - windowStart)..<(end - windowStart)])
    }
}
