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

    /// Loads an images file and a labels file (IDX, gzipped or plain) and checks that they match.
    public static func load(images imagesPath: String, labels labelsPath: String) throws(DataError) -> Dataset {
        let img = try IDXReader.read(path: imagesPath)
        let lab = try IDXReader.read(path: labelsPath)
        guard img.dimensions.count == 3 else {
            throw DataError(
                path: imagesPath, reason: "expected a 3-dimensional images file, got dimensions \(img.dimensions)")
        }
        guard lab.dimensions.count == 1 else {
            throw DataError(
                path: labelsPath, reason: "expected a 1-dimensional labels file, got dimensions \(lab.dimensions)")
        }
        guard img.dimensions[0] == lab.dimensions[0] else {
            throw DataError(
                path: labelsPath,
                reason: "has \(lab.dimensions[0]) labels but \(imagesPath) has \(img.dimensions[0]) images")
        }
        if let bad = lab.bytes.firstIndex(where: { $0 > 9 }) {
            throw DataError(path: labelsPath, reason: "label \(lab.bytes[bad]) at index \(bad) is outside 0...9")
        }
        return Dataset(images: img.bytes, labels: lab.bytes, rows: img.dimensions[1], cols: img.dimensions[2])
    }

    /// File names of the training and test splits inside a Fashion-MNIST/MNIST directory (`.gz` or plain).
    public static func split(directory: String, train: Bool) throws(DataError) -> Dataset {
        let prefix = train ? "train" : "t10k"
        let img = try resolve(directory, "\(prefix)-images-idx3-ubyte")
        let lab = try resolve(directory, "\(prefix)-labels-idx1-ubyte")
        return try load(images: img, labels: lab)
    }

    static func resolve(_ dir: String, _ base: String) throws(DataError) -> String {
        for candidate in ["\(dir)/\(base).gz", "\(dir)/\(base)"] where fileExists(candidate) { return candidate }
        throw DataError(path: "\(dir)/\(base).gz", reason: "missing (neither \(base).gz nor \(base) is in \(dir))")
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
