import CZlib

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads IDX files (the MNIST / Fashion-MNIST layout), gzipped or plain.
///
/// Layout: two zero bytes, a type byte (0x08 = unsigned byte), a dimension count, then one big-endian UInt32
/// per dimension, then the data, row-major. Only unsigned-byte data is accepted.
public enum IDXReader {
    /// An IDX array of unsigned bytes.
    public struct Array: Sendable, Equatable {
        /// Dimension sizes.
        public var dimensions: [Int]
        /// The data.
        public var bytes: [UInt8]
    }

    /// Largest decompressed file accepted (1 GiB), so a corrupt header cannot ask for unbounded memory.
    public static let maxBytes = 1 << 30

    /// Reads and parses `path` (gzipped or plain, detected from its bytes), straight into one buffer of the
    /// data's exact size.
    public static func read(path: String) throws(DataError) -> Array {
        try read(path: path, keepingRecords: nil)
    }

    /// Reads `path`, keeping only the records (slices along the first dimension: images, labels) at `keep`, in
    /// that order; the others are read past and never held. Peak memory is the kept records plus a small
    /// buffer. Indices must be within the first dimension.
    /// `checkDimensions` sees the header's dimensions before any data is read, and may refuse them.
    public static func read(
        path: String, keepingRecords keep: [Int]?,
        checkDimensions: ([Int]) throws(DataError) -> Void = { _ throws(DataError) in }
    ) throws(DataError) -> Array {
        let source = try IDXSource(path: path)
        let header = try source.readHeader()
        let dims = header.dimensions
        try checkDimensions(dims)
        let total = header.elements
        if let keep {
            let recordSize = dims.dropFirst().reduce(1, *)
            guard keep.allSatisfy({ $0 >= 0 && $0 < dims[0] }) else {
                throw DataError(path: path, reason: "a selected record is outside 0..<\(dims[0])")
            }
            // Where each record of the file goes in the output (−1: skipped).
            var slot = [Int32](repeating: -1, count: dims[0])
            for (position, index) in keep.enumerated() { slot[index] = Int32(position) }
            var out = [UInt8](repeating: 0, count: keep.count * recordSize)
            var record = [UInt8](repeating: 0, count: recordSize)
            for r in 0..<dims[0] {
                let wanted = slot[r]
                if wanted >= 0 {
                    try IDXSource.withBytes(of: &out) { o throws(DataError) in
                        try source.readExactly(
                            into: UnsafeMutableRawBufferPointer(
                                rebasing: o[(Int(wanted) * recordSize)...].prefix(recordSize)),
                            declared: dims, total: total)
                    }
                } else {
                    try IDXSource.withBytes(of: &record) { b throws(DataError) in
                        try source.readExactly(into: b, declared: dims, total: total)
                    }
                }
            }
            try source.expectEnd(after: total)
            return Array(dimensions: [keep.count] + dims.dropFirst(), bytes: out)
        }
        var out = [UInt8](repeating: 0, count: total)
        try IDXSource.withBytes(of: &out) { o throws(DataError) in
            try source.readExactly(into: o, declared: dims, total: total)
        }
        try source.expectEnd(after: total)
        return Array(dimensions: dims, bytes: out)
    }

    static func hex(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return "0x" + (s.count == 1 ? "0" + s : s)
    }
}

/// Reads an IDX file record by record (slices along the first dimension), a few at a time: a test set is
/// evaluated in chunks without ever being held whole.
public final class IDXRecordReader {
    /// The file's dimensions.
    public let dimensions: [Int]
    /// Records not yet read.
    public private(set) var remaining: Int
    private let source: IDXSource
    private let recordSize: Int
    private let total: Int

    /// Opens `path` and reads its header.
    public init(path: String) throws(DataError) {
        source = try IDXSource(path: path)
        let header = try source.readHeader()
        dimensions = header.dimensions
        total = header.elements
        remaining = header.dimensions[0]
        recordSize = header.dimensions.dropFirst().reduce(1, *)
    }

    /// The next `count` records (fewer at the end; none once all are read, after checking that nothing
    /// follows them).
    public func next(_ count: Int) throws(DataError) -> [UInt8] {
        let n = min(count, remaining)
        guard n > 0 else {
            try source.expectEnd(after: total)
            return []
        }
        var out = [UInt8](repeating: 0, count: n * recordSize)
        let (dims, total) = (dimensions, self.total)
        try IDXSource.withBytes(of: &out) { b throws(DataError) in
            try source.readExactly(into: b, declared: dims, total: total)
        }
        remaining -= n
        return out
    }
}
