/// Geometry of a 2-D convolution over one `channels × height × width` image.
public struct ConvGeometry: Sendable, Hashable {
    /// Input channels.
    public var channels: Int
    /// Input height.
    public var height: Int
    /// Input width.
    public var width: Int
    /// Square kernel size.
    public var kernel: Int
    /// Stride.
    public var stride: Int
    /// Zero padding on each side.
    public var padding: Int

    /// Output height.
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    /// Output width.
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Output positions per channel.
    public var positions: Int { outHeight * outWidth }
    /// Rows of the unfolded patch matrix: `channels · kernel²`.
    public var patch: Int { channels * kernel * kernel }

    /// Unfolds one image into `patch × positions` columns (zero padded). Each kernel offset's row block is
    /// filled as zero rows above, then per output row a zero head, a copied (stride 1) or gathered middle and a
    /// zero tail, then zero rows below: no per-element bounds test, and short inline loops rather than a
    /// `memmove` call per row of tens of elements.
    @inline(__always)
    ///
    /// `srcEnd`, when given, is the end of the readable memory after `src`: a row of at most 16 (32) bytes is
    /// then copied with one 16-byte (32-byte) load and store (the bytes past the row are rewritten by later rows, and neither
    /// access passes `srcEnd` or the end of the columns).
    func im2col<T: Numeric>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, srcEnd: UnsafePointer<T>? = nil) {
        let ho = outHeight
        let wo = outWidth
        let p = positions
        let srcLimit = UnsafeRawPointer(srcEnd ?? src) - 16
        let dstLimit = UnsafeRawPointer(dst + patch &* p) - 16
        var block = dst
        for c in 0..<channels {
            let plane = src + c &* height &* width
            for ki in 0..<kernel {
                // Output rows whose input row iy = oy·stride − padding + ki lies inside [0, height).
                let oyFirst = min(ho, max(0, (padding - ki + stride - 1) / stride))
                let oyLast = max(oyFirst, min(ho, (height - 1 + padding - ki) / stride + 1))  // exclusive
                for kj in 0..<kernel {
                    // Output columns whose input column ix = ox·stride − padding + kj lies inside [0, width).
                    let first = min(wo, max(0, (padding - kj + stride - 1) / stride))
                    let last = max(first, min(wo, (width - 1 + padding - kj) / stride + 1))  // exclusive
                    var out = block
                    for i in 0..<(oyFirst &* wo) { out[i] = 0 }
                    out += oyFirst &* wo
                    let iy0: Int = oyFirst &* stride &- padding &+ ki
                    let ix0: Int = first &* stride &- padding &+ kj
                    var from = plane + (iy0 &* width &+ ix0)
                    for _ in oyFirst..<oyLast {
                        for i in 0..<first { out[i] = 0 }
                        if stride == 1 {
                            let bytes = (last &- first) &* MemoryLayout<T>.stride
                            let f = UnsafeRawPointer(from)
                            let t = UnsafeMutableRawPointer(out + first)
                            if bytes <= 16 && f <= srcLimit && UnsafeRawPointer(t) <= dstLimit {
                                t.storeBytes(of: f.loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
                            } else if bytes <= 32 && f + 16 <= srcLimit && UnsafeRawPointer(t) + 16 <= dstLimit {
                                t.storeBytes(of: f.loadUnaligned(as: SIMD32<UInt8>.self), as: SIMD32<UInt8>.self)
                            } else {
                                copyShort(from: f, to: t, bytes: bytes)
                            }
                        } else {
                            for i in 0..<(last &- first) { out[first &+ i] = from[i &* stride] }
                        }
                        for i in last..<wo { out[i] = 0 }
                        out += wo
                        from += stride &* width
                    }
                    for i in 0..<((ho &- oyLast) &* wo) { out[i] = 0 }
                    block += p
                }
            }
        }
    }

    /// Copies a short run of bytes (a row of tens of elements) 16, then 8, then 1 byte at a time, inline.
    @inline(__always)
    private func copyShort(from: UnsafeRawPointer, to: UnsafeMutableRawPointer, bytes n: Int) {
        var i = 0
        while i &+ 16 <= n {
            to.storeBytes(
                of: from.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self), toByteOffset: i,
                as: SIMD16<UInt8>.self)
            i &+= 16
        }
        while i &+ 8 <= n {
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
            i &+= 8
        }
        while i < n {
            to.storeBytes(of: from.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            i &+= 1
        }
    }

    /// Folds `patch × positions` columns back into an image, adding overlapping contributions. Like `im2col`,
    /// each row works on the range of output columns that land inside the image.
    @inline(__always)
    func col2im(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        col2im(src, dst, channels: 0..<channels)
    }

    /// `col2im` of the columns of input channels `range` only: `src` holds their `range.count × kernel²` rows
    /// (the rest of the unfolded matrix is not needed to fold those channels back).
    @inline(__always)
    func col2im(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels range: Range<Int>) {
        let ho = outHeight
        let wo = outWidth
        let p = positions
        for c in range {
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let row = src + (((c - range.lowerBound) * kernel + ki) * kernel + kj) * p
                    let first = max(0, (padding - kj + stride - 1) / stride)
                    let last = min(wo, (width - 1 + padding - kj) / stride + 1)
                    guard first < last else { continue }
                    for oy in 0..<ho {
                        let iy = oy * stride - padding + ki
                        if iy < 0 || iy >= height { continue }
                        let dstRow = dst + (c * height + iy) * width - padding + kj
                        let srcRow = row + oy * wo
                        if stride == 1 {
                            for ox in first..<last { dstRow[ox] += srcRow[ox] }
                        } else {
                            for ox in first..<last { dstRow[ox * stride] += srcRow[ox] }
                        }
                    }
                }
            }
        }
    }
}

extension FixedPointStorage {
    /// Unfolds the image starting at element `offset` into `out`, reusing its allocation when it already holds
    /// columns of the same kind and size (every element is written, so no clearing is needed).
    func im2col(offset: Int, geometry g: ConvGeometry, into out: inout FixedPointStorage) {
        let n = g.patch * g.positions
        switch self {
        case .int8(let a):
            var buf: [Int8] = []
            if case .int8(let old) = out, old.count == n { buf = old }
            out = .int8([])  // drop the old reference so that `buf` is unique and written in place
            if buf.count != n { buf = [Int8](repeating: 0, count: n) }
            a.withUnsafeBufferPointer { s in
                buf.withUnsafeMutableBufferPointer { d in
                    g.im2col(s.baseAddress! + offset, d.baseAddress!, srcEnd: s.baseAddress! + s.count)
                }
            }
            out = .int8(buf)
        case .int16(let a):
            var buf: [Int16] = []
            if case .int16(let old) = out, old.count == n { buf = old }
            out = .int16([])
            if buf.count != n { buf = [Int16](repeating: 0, count: n) }
            a.withUnsafeBufferPointer { s in
                buf.withUnsafeMutableBufferPointer { d in
                    g.im2col(s.baseAddress! + offset, d.baseAddress!, srcEnd: s.baseAddress! + s.count)
                }
            }
            out = .int16(buf)
        }
    }
}
