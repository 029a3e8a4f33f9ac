import CZlib

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IDX file opened for streaming through zlib's gzip reader, which reads gzipped and plain files alike.
/// Owns its `gzFile` and closes it in `deinit`; every failure names the file and what was wrong.
final class IDXSource {
    /// The dimensions and element count from an IDX header.
    struct Header {
        var dimensions: [Int]
        var elements: Int
    }

    let path: String
    private var file: gzFile?
    /// Bytes read so far (header included).
    private(set) var offset = 0

    init(path: String) throws(DataError) {
        self.path = path
        // gzopen reports why through errno only for the open itself; check that first for a clear message.
        guard access(path, R_OK) == 0 else {
            throw DataError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        guard let f = gzopen(path, "rb") else {
            throw DataError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        gzbuffer(f, 1 << 17)
        file = f
    }

    deinit {
        if let file { gzclose(file) }
    }

    /// Runs `body` on the bytes of `array`, passing its typed error through (the standard library's
    /// `withUnsafeMutableBytes` erases it).
    static func withBytes<R>(
        of array: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(DataError) -> R
    ) throws(DataError) -> R {
        var result: Result<R, DataError>? = nil
        array.withUnsafeMutableBytes { b in
            do throws(DataError) {
                result = .success(try body(b))
            } catch {
                result = .failure(error)
            }
        }
        switch result {
        case .success(let r)?: return r
        case .failure(let e)?: throw e
        case nil: preconditionFailure("withBytes: body did not run")
        }
    }

    /// Reads up to `buffer.count` bytes; returns how many (fewer only at the end of the data).
    private func read(_ buffer: UnsafeMutableRawBufferPointer) throws(DataError) -> Int {
        guard let file, let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let chunk = UInt32(min(buffer.count - done, 1 << 30))
            let n = gzread(file, base + done, chunk)
            if n < 0 { throw streamError() }
            if n == 0 { break }
            done += Int(n)
        }
        offset += done
        if done < buffer.count { try checkStreamEnd() }
        return done
    }

    /// The error zlib reports for the stream, as a `DataError`.
    private func streamError() -> DataError {
        var code: Int32 = 0
        let message = file.flatMap { gzerror($0, &code) }.map { String(cString: $0) } ?? ""
        if code == Z_BUF_ERROR {
            return DataError(path: path, reason: "truncated gzip stream (ends before its trailer)")
        }
        if code == Z_ERRNO { return DataError(path: path, reason: "read error: \(String(cString: strerror(errno)))") }
        return DataError(path: path, reason: "corrupt gzip data (\(message.isEmpty ? "zlib error \(code)" : message))")
    }

    /// After a short read: a gzip stream that ended early is an error of its own.
    private func checkStreamEnd() throws(DataError) {
        guard let file else { return }
        var code: Int32 = 0
        _ = gzerror(file, &code)
        if code != Z_OK && code != Z_STREAM_END { throw streamError() }
    }

    /// Reads the IDX header: magic, element type, dimensions; checks the declared size against the limit.
    func readHeader() throws(DataError) -> Header {
        var head = [UInt8](repeating: 0, count: 4)
        let got = try IDXSource.withBytes(of: &head) { b throws(DataError) in try read(b) }
        guard got == 4 else {
            throw DataError(path: path, reason: "truncated: \(got) bytes, an IDX header needs at least 4")
        }
        guard head[0] == 0, head[1] == 0 else {
            throw DataError(
                path: path,
                reason:
                    "not an IDX file (magic bytes \(IDXReader.hex(head[0])) \(IDXReader.hex(head[1])), expected 00 00)")
        }
        guard head[2] == 0x08 else {
            throw DataError(
                path: path, reason: "unsupported IDX element type \(IDXReader.hex(head[2])) (only 0x08, unsigned byte)")
        }
        let ndim = Int(head[3])
        guard ndim >= 1 && ndim <= 4 else {
            throw DataError(path: path, reason: "unsupported IDX dimension count \(ndim) (expected 1...4)")
        }
        var raw = [UInt8](repeating: 0, count: 4 * ndim)
        let n = try IDXSource.withBytes(of: &raw) { b throws(DataError) in try read(b) }
        guard n == raw.count else {
            throw DataError(path: path, reason: "truncated header: \(4 + n) bytes, expected \(4 + 4 * ndim)")
        }
        var dims: [Int] = []
        var total = 1
        for d in 0..<ndim {
            let v = Int(raw[4 * d]) << 24 | Int(raw[4 * d + 1]) << 16 | Int(raw[4 * d + 2]) << 8 | Int(raw[4 * d + 3])
            dims.append(v)
            total = total.multipliedReportingOverflow(by: v).overflow ? Int.max : total * v
        }
        guard total <= IDXReader.maxBytes else {
            throw DataError(
                path: path, reason: "declares \(dims) elements, more than the \(IDXReader.maxBytes)-byte limit")
        }
        return Header(dimensions: dims, elements: total)
    }

    /// Fills `buffer` from the data; a short file is "truncated", naming what the header declared and what
    /// the file holds.
    func readExactly(into buffer: UnsafeMutableRawBufferPointer, declared dims: [Int], total: Int) throws(DataError) {
        let dataStart = 4 + 4 * dims.count
        let got = try read(buffer)
        guard got == buffer.count else {
            throw DataError(
                path: path,
                reason: "truncated: header declares \(dims) = \(total) bytes of data, file has \(offset - dataStart)")
        }
    }

    /// Checks that nothing follows the `total` bytes of data (and that a gzip stream ends cleanly).
    func expectEnd(after total: Int) throws(DataError) {
        var extra = [UInt8](repeating: 0, count: 1 << 16)
        var trailing = 0
        while true {
            let n = try IDXSource.withBytes(of: &extra) { b throws(DataError) in try read(b) }
            trailing += n
            if n < extra.count || trailing > IDXReader.maxBytes { break }
        }
        guard trailing == 0 else {
            throw DataError(path: path, reason: "\(trailing) unexpected trailing bytes after \(total) bytes of data")
        }
    }
}
