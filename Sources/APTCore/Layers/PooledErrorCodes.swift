/// A max-pooling layer's input error as error codes, made an image at a time as the convolution below asks for
/// them, so that the full-size error never exists in any form.
///
/// It holds the pooled errors' codes (one per pooling window, already masked where a ReLU below blocked them,
/// with a scale per image: `ImageErrorCodes`) and each window's arg-max. An image's codes are its planes with each
/// pooled code at its arg-max and zeros elsewhere, at that image's format: the codes quantising the full-size
/// error would give, since every other value of it is zero.
struct PooledErrorCodes: Sendable {
    /// Images in the batch.
    var count: Int { pooled.count }
    /// Codes per image (channels × height × width of the pooling layer's input).
    let imageSize: Int
    private let pooled: ImageErrorCodes
    private let argmax: PackedArgmax
    private let (height, width, size): (Int, Int, Int)
    private var nextImage = 0

    /// The full-size error of the pooled codes `pooled` (one per window of `size × size`, planes of
    /// `height × width`, `channels` planes an image) with arg-max `argmax`.
    init(pooled: ImageErrorCodes, argmax: PackedArgmax, channels: Int, height: Int, width: Int, size: Int) {
        let windows = (height / size) * (width / size)
        precondition(
            windows > 0 && pooled.imageSize == channels * windows && argmax.count == pooled.count * pooled.imageSize,
            "PooledErrorCodes: shape mismatch")
        self.pooled = pooled
        self.argmax = argmax
        self.imageSize = channels * height * width
        (self.height, self.width, self.size) = (height, width, size)
    }

    /// Bytes of what it holds: the pooled codes and their formats, and the arg-max.
    var byteCount: Int { pooled.byteCount + argmax.byteCount }

    /// The bits of the codes.
    var bits: Int { pooled.bits }

    /// The codes and format of the next image (images are handed out in order, each once).
    mutating func next() -> (codes: FixedPointStorage, format: FixedPointFormat) {
        precondition(nextImage < count, "PooledErrorCodes: all \(count) images were handed out")
        let n = nextImage
        nextImage += 1
        let format = pooled.formats[n]
        switch pooled.storage {
        case .int8(let a): return (.int8(scatter(a, image: n)), format)
        case .int16(let a): return (.int16(scatter(a, image: n)), format)
        }
    }

    /// Image `n`'s full-size codes: zeros, each pooled code of `codes` at its arg-max.
    private func scatter<T: FixedWidthInteger & SignedInteger>(_ codes: [T], image n: Int) -> [T] {
        var out = [T](repeating: 0, count: imageSize)
        let (oh, ow) = (height / size, width / size)
        let planeWindows = oh * ow
        let planes = pooled.imageSize / planeWindows
        let (height, width, size) = (self.height, self.width, self.size)
        codes.withUnsafeBufferPointer { cp in
            out.withUnsafeMutableBufferPointer { op in
                argmax.withReader { ap in
                    for plane in 0..<planes {
                        let o0 = n * pooled.imageSize + plane * planeWindows
                        let dst = op.baseAddress! + plane * height * width
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let o = o0 + oy * ow + ox
                                let a = ap[o]
                                dst[(oy * size + a / size) * width + ox * size + a % size] = cp[o]
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
