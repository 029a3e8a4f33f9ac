/// A labelled image data set held as bytes (one byte per pixel), normalised batch by batch.
public struct Dataset: Sendable {
    /// Where Debian's `dataset-fashion-mnist` package installs the gzipped IDX files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// Pixels, `count × rows × cols`, row-major.
    public let images: [UInt8]
    /// One label per image.
    public let labels: [UInt8]
    /// Number of samples.
    public let count: Int
    /// Image height.
    public let rows: Int
    /// Image width.
    public let cols: Int
    /// Mean subtracted after scaling pixels to [0, 1].
    public var mean: Float = 0.2860
    /// Standard deviation divided by after subtracting the mean.
    public var std: Float = 0.3530

    /// Number of classes the labels span (max label + 1).
    public var classes: Int { Int(labels.max() ?? 0) + 1 }

    /// Creates a data set; sizes must agree.
    public init(images: [UInt8], labels: [UInt8], rows: Int, cols: Int) {
        precondition(images.count == labels.count * rows * cols, "images and labels disagree")
        self.images = images
        self.labels = labels
        self.count = labels.count
        self.rows = rows
        self.cols = cols
    }

    /// Loads an images file and a labels file (IDX, gzipped or plain) and checks that they match. With
    /// `keeping`, only those samples are kept, in that order: the images file is streamed and the others are
    /// never held (a node keeps only its shard).
    public static func load(images imagesPath: String, labels labelsPath: String, keeping: [Int]? = nil)
        throws(DataError) -> Dataset
    {
        let allLabels = try labels(path: labelsPath)
        if let keeping, let bad = keeping.first(where: { $0 < 0 || $0 >= allLabels.count }) {
            throw DataError(path: labelsPath, reason: "sample \(bad) selected, the file has \(allLabels.count)")
        }
        let img = try IDXReader.read(path: imagesPath, keepingRecords: keeping) { dims throws(DataError) in
            guard dims.count == 3 else {
                throw DataError(
                    path: imagesPath, reason: "expected a 3-dimensional images file, got dimensions \(dims)")
            }
            guard dims[0] == allLabels.count else {
                throw DataError(
                    path: labelsPath, reason: "has \(allLabels.count) labels but \(imagesPath) has \(dims[0]) images")
            }
        }
        let kept = keeping.map { $0.map { allLabels[$0] } } ?? allLabels
        return Dataset(images: img.bytes, labels: kept, rows: img.dimensions[1], cols: img.dimensions[2])
    }

    /// Reads a labels file: one dimension, every label in 0...9.
    public static func labels(path: String) throws(DataError) -> [UInt8] {
        let lab = try IDXReader.read(path: path)
        guard lab.dimensions.count == 1 else {
            throw DataError(
                path: path, reason: "expected a 1-dimensional labels file, got dimensions \(lab.dimensions)")
        }
        if let bad = lab.bytes.firstIndex(where: { $0 > 9 }) {
            throw DataError(path: path, reason: "label \(lab.bytes[bad]) at index \(bad) is outside 0...9")
        }
        return lab.bytes
    }

    /// The labels of the training or test split inside a Fashion-MNIST/MNIST directory (to choose a shard
    /// before loading any image).
    public static func splitLabels(directory: String, train: Bool) throws(DataError) -> [UInt8] {
        try labels(path: try resolve(directory, "\(train ? "train" : "t10k")-labels-idx1-ubyte"))
    }

    /// The training or test split inside a Fashion-MNIST/MNIST directory (`.gz` or plain files), keeping only
    /// the samples at `keeping` when given.
    public static func split(directory: String, train: Bool, keeping: [Int]? = nil) throws(DataError) -> Dataset {
        let prefix = train ? "train" : "t10k"
        let img = try resolve(directory, "\(prefix)-images-idx3-ubyte")
        let lab = try resolve(directory, "\(prefix)-labels-idx1-ubyte")
        return try load(images: img, labels: lab, keeping: keeping)
    }

    /// Calls `body` with the split's samples in order, `chunk` at a time (at most `limit` in all), each chunk
    /// its own small data set: the split is streamed from its files and never held whole.
    public static func forEachChunk(
        directory: String, train: Bool, limit: Int? = nil, chunk: Int = 500,
        _ body: (Dataset) throws(DataError) -> Void
    ) throws(DataError) {
        let prefix = train ? "train" : "t10k"
        let imagesPath = try resolve(directory, "\(prefix)-images-idx3-ubyte")
        let labelsPath = try resolve(directory, "\(prefix)-labels-idx1-ubyte")
        let labels = try Self.labels(path: labelsPath)
        let images = try IDXRecordReader(path: imagesPath)
        guard images.dimensions.count == 3 else {
            throw DataError(
                path: imagesPath, reason: "expected a 3-dimensional images file, got dimensions \(images.dimensions)")
        }
        guard images.dimensions[0] == labels.count else {
            throw DataError(
                path: labelsPath,
                reason: "has \(labels.count) labels but \(imagesPath) has \(images.dimensions[0]) images")
        }
        let wanted = min(labels.count, limit ?? labels.count)
        var done = 0
        while done < wanted {
            let n = min(chunk, wanted - done)
            let bytes = try images.next(n)
            try body(
                Dataset(
                    images: bytes, labels: Array(labels[done..<(done + n)]), rows: images.dimensions[1],
                    cols: images.dimensions[2]))
            done += n
        }
        if wanted == labels.count { _ = try images.next(1) }  // checks that nothing follows the last image
    }

    static func resolve(_ dir: String, _ base: String) throws(DataError) -> String {
        for candidate in ["\(dir)/\(base).gz", "\(dir)/\(base)"] where fileExists(candidate) { return candidate }
        throw DataError(path: "\(dir)/\(base).gz", reason: "missing (neither \(base).gz nor \(base) is in \(dir))")
    }

    /// The samples at `indices` as activation codes of `bits` bits, shape `[1, rows, cols]`: the normalised values
    /// of `batch(indices:)` quantised (with `rounding`) in the format that covers their largest magnitude — the
    /// codes a fixed-point network's first layer would make of the float batch — computed one sample at a time,
    /// so no float copy of the batch is ever held.
    public func codeBatch(indices: [Int], bits: Int, rounding: RoundingMode, random: inout RandomSource) -> Batch {
        let size = rows * cols
        let scale = 1 / (255 * std)
        let shift = -mean / std
        // Normalisation is increasing in the pixel, so the largest magnitude comes from the darkest or the
        // brightest pixel of the batch.
        var lo = SIMD16<UInt8>(repeating: .max)
        var hi = SIMD16<UInt8>(repeating: .min)
        var loTail = UInt8.max
        var hiTail = UInt8.min
        images.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            let raw = UnsafeRawPointer(base)
            for i in indices {
                var j = 0
                while j + 16 <= size {
                    let v = raw.loadUnaligned(fromByteOffset: i * size + j, as: SIMD16<UInt8>.self)
                    lo = pointwiseMin(lo, v)
                    hi = pointwiseMax(hi, v)
                    j += 16
                }
                while j < size {
                    loTail = min(loTail, src[i * size + j])
                    hiTail = max(hiTail, src[i * size + j])
                    j += 1
                }
            }
        }
        let lowest = min(lo.min(), loTail)
        let highest = max(hi.max(), hiTail)
        let maxAbs =
            indices.isEmpty ? 0 : max(abs(Float(lowest) * scale + shift), abs(Float(highest) * scale + shift))
        let format = FixedPointFormat.covering(maxAbs: maxAbs, bits: bits)
        var sample = [Float](repeating: 0, count: size)
        func fill<T: FixedWidthInteger & SignedInteger & SIMDScalar>(_ out: inout [T]) {
            images.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    sample.withUnsafeMutableBufferPointer { x in
                        for (r, i) in indices.enumerated() {
                            for j in 0..<size { x[j] = Float(src[i * size + j]) * scale + shift }
                            _ = Quantizer.quantize(
                                UnsafeBufferPointer(x),
                                into: UnsafeMutableBufferPointer(rebasing: dst[(r * size)..<((r + 1) * size)]),
                                format: format, rounding: rounding, random: &random)
                        }
                    }
                }
            }
        }
        let shape = [indices.count, 1, rows, cols]
        let codes: FixedPointTensor
        if format.bits <= 8 {
            var out = [Int8](repeating: 0, count: indices.count * size)
            fill(&out)
            codes = FixedPointTensor(shape: shape, format: format, int8Codes: out)
        } else {
            var out = [Int16](repeating: 0, count: indices.count * size)
            fill(&out)
            codes = FixedPointTensor(shape: shape, format: format, int16Codes: out)
        }
        return Batch(codes: codes, count: indices.count, shape: [1, rows, cols])
    }

    /// The samples at `indices` as a normalised float batch of shape `[1, rows, cols]`.
    public func batch(indices: [Int]) -> Batch {
        let size = rows * cols
        var out = [Float](repeating: 0, count: indices.count * size)
        let scale = 1 / (255 * std)
        let shift = -mean / std
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (r, i) in indices.enumerated() {
                    let s = src.baseAddress! + i * size
                    let d = dst.baseAddress! + r * size
                    for j in 0..<size { d[j] = Float(s[j]) * scale + shift }
                }
            }
        }
        return Batch(values: out, count: indices.count, shape: [1, rows, cols])
    }

    /// The labels at `indices`.
    public func labels(at indices: [Int]) -> [UInt8] { indices.map { labels[$0] } }

    /// The subset at `indices`, as its own data set.
    public func subset(_ indices: [Int]) -> Dataset {
        let size = rows * cols
        var img = [UInt8]()
        img.reserveCapacity(indices.count * size)
        for i in indices { img.append(contentsOf: images[(i * size)..<((i + 1) * size)]) }
        var d = Dataset(images: img, labels: indices.map { labels[$0] }, rows: rows, cols: cols)
        d.mean = mean
        d.std = std
        return d
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
