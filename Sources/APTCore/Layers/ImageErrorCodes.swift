/// Error codes with a scale of their own for each image of the batch: what a convolution's weight gradient and
/// input error are computed from.
///
/// A convolution works an image at a time, so its error needs no common scale: each image's codes cover that
/// image's largest error (per-sample quantisation, as in Chen et al., "A Statistical Framework for Low-bitwidth
/// Training of Deep Neural Networks", NeurIPS 2020, which shows it lowers the variance of the quantised
/// gradient). The images whose errors are small, which a batch-wide scale rounds to zero, keep their signal; and
/// because an image's codes need only that image, a layer can make them as it computes each image's error, so
/// the batch's float error never exists (`Conv2d` and `Linear` do so for the pooling layer beneath them).
///
/// Codes are made in image order from one random stream (stochastic rounding), so the codes of a batch are the
/// same whether they are made an image at a time or from the whole float error.
struct ImageErrorCodes: Sendable {
    /// The codes, image after image (`imageSize` each).
    private(set) var storage: FixedPointStorage
    /// Each image's format.
    private(set) var formats: [FixedPointFormat]
    /// Codes per image.
    let imageSize: Int
    /// Bits of every image's codes.
    let bits: Int

    /// Room for the codes of `count` images of `imageSize` errors at `bits` bits (all zero until made).
    init(count: Int, imageSize: Int, bits: Int) {
        self.imageSize = imageSize
        self.bits = bits
        storage =
            bits <= 8
            ? .int8([Int8](repeating: 0, count: count * imageSize))
            : .int16([Int16](repeating: 0, count: count * imageSize))
        formats = [FixedPointFormat](repeating: FixedPointFormat.covering(maxAbs: 0, bits: bits), count: count)
    }

    /// The codes of `values` (`count × imageSize`), an image at a time, each image masked first by `mask` when
    /// given; each image's values are counted into `underflow` (when measuring) at its step.
    init(
        quantizing values: consuming [Float], imageSize: Int, bits: Int, mask: [UInt64]?, rounding: RoundingMode,
        random: inout RandomSource, underflow: inout UnderflowCounts?
    ) {
        precondition(imageSize > 0 && values.count % imageSize == 0, "ImageErrorCodes: values are not whole images")
        self.init(count: values.count / imageSize, imageSize: imageSize, bits: bits)
        // Masked in place: the caller hands the values over (a shared buffer would be copied first).
        values.withUnsafeMutableBufferPointer { vp in
            for n in formats.indices {
                make(
                    image: n, from: UnsafeMutableBufferPointer(rebasing: vp[(n * imageSize)..<((n + 1) * imageSize)]),
                    mask: mask, rounding: rounding, random: &random, underflow: &underflow)
            }
        }
    }

    /// Number of images.
    var count: Int { formats.count }

    /// Bytes held (codes and formats).
    var byteCount: Int { storage.byteCount + formats.count * MemoryLayout<FixedPointFormat>.stride }

    /// Bytes of the codes and formats of `count` images of `imageSize` errors at `bits` bits.
    static func byteCount(count: Int, imageSize: Int, bits: Int) -> Int {
        count * (imageSize * (bits <= 8 ? 1 : 2) + MemoryLayout<FixedPointFormat>.stride)
    }

    /// Makes image `n`'s codes from its float errors `values` (zeroed first where `mask`, one bit per error of
    /// the whole batch, is clear), at the format that covers what survives; counts them into `underflow` (when
    /// measuring).
    mutating func make(
        image n: Int, from values: UnsafeMutableBufferPointer<Float>, mask: [UInt64]?, rounding: RoundingMode,
        random: inout RandomSource, underflow: inout UnderflowCounts?
    ) {
        precondition(values.count == imageSize, "ImageErrorCodes: an image has \(imageSize) errors")
        if let mask {
            precondition(mask.count * 64 >= (n + 1) * imageSize, "ImageErrorCodes: the mask is too short")
            mask.withUnsafeBufferPointer { m in
                ReLU.applyMask(m.baseAddress!, from: n * imageSize, to: values.baseAddress!, count: imageSize)
            }
        }
        let format = FixedPointFormat.covering(maxAbs: Quantizer.maxAbs(UnsafeBufferPointer(values)), bits: bits)
        formats[n] = format
        underflow?.count(UnsafeBufferPointer(values), step: format.step)
        let range = (n * imageSize)..<((n + 1) * imageSize)
        func quantize<T: FixedWidthInteger & SignedInteger & SIMDScalar>(_ codes: UnsafeMutableBufferPointer<T>) {
            _ = Quantizer.quantize(
                UnsafeBufferPointer(values), into: UnsafeMutableBufferPointer(rebasing: codes[range]), format: format,
                rounding: rounding, random: &random)
        }
        storage.modifyCodes(int8: quantize, int16: quantize)
    }
}
