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

    /// Reads and parses `path`; gzip is detected from its magic bytes.
    public static func read(path: String) throws(DataError) -> Array {
        let raw = try readFile(path)
        let data: [UInt8]
        if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B {
            data = try gunzip(raw, path: path)
        } else {
            data = raw
        }
        return try parse(data, path: path)
    }

    /// Parses an in-memory IDX file.
    public static func parse(_ data: [UInt8], path: String) throws(DataError) -> Array {
        guard data.count >= 4 else {
            throw DataError(path: path, reason: "truncated: \(data.count) bytes, an IDX header needs at least 4")
        }
        guard data[0] == 0, data[1] == 0 else {
            throw DataError(
                path: path, reason: "not an IDX file (magic bytes \(hex(data[0])) \(hex(data[1])), expected 00 00)")
        }
        guard data[2] == 0x08 else {
            throw DataError(
                path: path, reason: "unsupported IDX element type \(hex(data[2])) (only 0x08, unsigned byte)")
        }
        let ndim = Int(data[3])
        guard ndim >= 1 && ndim <= 4 else {
            throw DataError(path: path, reason: "unsupported IDX dimension count \(ndim) (expected 1...4)")
        }
        let headerSize = 4 + 4 * ndim
        guard data.count >= headerSize else {
            throw DataError(path: path, reason: "truncated header: \(data.count) bytes, expected \(headerSize)")
        }
        var dims: [Int] = []
        var total = 1
        for d in 0..<ndim {
            let o = 4 + 4 * d
            let v = Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3])
            dims.append(v)
            total = total.multipliedReportingOverflow(by: v).overflow ? Int.max : total * v
        }
        guard total <= maxBytes else {
            throw DataError(path: path, reason: "declares \(dims) elements, more than the \(maxBytes)-byte limit")
        }
        let have = data.count - headerSize
        guard have >= total else {
            throw DataError(
                path: path, reason: "truncated: header declares \(dims) = \(total) bytes of data, file has \(have)")
        }
        guard have == total else {
            throw DataError(
                path: path, reason: "\(have - total) unexpected trailing bytes after \(total) bytes of data")
        }
        return Array(dimensions: dims, bytes: [UInt8](data[headerSize...]))
    }

    static func hex(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return "0x" + (s.count == 1 ? "0" + s : s)
    }

    static func readFile(_ path: String) throws(DataError) -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            let reason = String(cString: strerror(errno))
            throw DataError(path: path, reason: "cannot open: \(reason)")
        }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { out.append(contentsOf: buf[0..<n]) }
            if n < buf.count {
                if ferror(f) != 0 { throw DataError(path: path, reason: "read error") }
                break
            }
            if out.count > maxBytes { throw DataError(path: path, reason: "file larger than \(maxBytes) bytes") }
        }
        return out
    }

    /// Decompresses a gzip stream with zlib; a truncated or corrupt stream is an error naming the file.
    static func gunzip(_ input: [UInt8], path: String) throws(DataError) -> [UInt8] {
        var stream = z_stream()
        var status = apt_inflateInit2(&stream, 15 + 16)
        guard status == Z_OK else { throw DataError(path: path, reason: "zlib inflateInit2 failed (\(status))") }
        defer { inflateEnd(&stream) }
        var out = [UInt8]()
        out.reserveCapacity(input.count * 4)
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        var input = input
        let result: Result<Void, DataError> = input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = uInt(inp.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress
                    stream.avail_out = uInt(c.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return c.count - Int(stream.avail_out)
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    return .failure(DataError(path: path, reason: "truncated gzip stream (ends before its trailer)"))
                }
                if status != Z_OK && status != Z_STREAM_END {
                    let msg = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    return .failure(DataError(path: path, reason: "corrupt gzip data (\(msg))"))
                }
                out.append(contentsOf: chunk[0..<produced])
                if out.count > maxBytes {
                    return .failure(DataError(path: path, reason: "decompresses to more than \(maxBytes) bytes"))
                }
                if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                    return .failure(DataError(path: path, reason: "truncated gzip stream (ends before its trailer)"))
                }
            } while status != Z_STREAM_END
            return .success(())
        }
        if case .failure(let e) = result { throw e }
        return out
    }
}
