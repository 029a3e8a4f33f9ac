/// Appends little-endian fields to a byte array.
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty writer.
    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    /// Appends one byte.
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    /// Appends a little-endian UInt16.
    public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v & 0xFF))
        bytes.append(UInt8(v >> 8))
    }
    /// Appends a little-endian UInt32.
    public mutating func u32(_ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    /// Appends a little-endian UInt64.
    public mutating func u64(_ v: UInt64) {
        for s in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
    /// Appends a signed byte.
    public mutating func i8(_ v: Int8) { u8(UInt8(bitPattern: v)) }
    /// Appends an IEEE-754 binary32, little-endian.
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }
    /// Appends an IEEE-754 binary64, little-endian.
    public mutating func f64(_ v: Double) { u64(v.bitPattern) }
    /// Appends a UTF-8 string with a UInt16 length prefix (at most 65,535 bytes; longer strings are cut at a
    /// character boundary).
    public mutating func string(_ s: String) {
        var utf8 = Array(s.utf8)
        if utf8.count > Int(UInt16.max) {
            var cut = Int(UInt16.max)
            while cut > 0 && (utf8[cut] & 0xC0) == 0x80 { cut -= 1 }
            utf8 = Array(utf8[0..<cut])
        }
        u16(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    /// Appends raw bytes.
    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    /// Appends `b` with a UInt32 length prefix.
    public mutating func block(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
    /// Appends an unsigned LEB128 varint.
    public mutating func varint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(x & 0x7F) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }
}

/// Reads little-endian fields from a byte slice, never past its end: every shortfall is a
/// `WireError.truncated` naming the field.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    /// Current offset.
    public private(set) var offset: Int
    private let end: Int

    /// A reader over `bytes[start..<end]`.
    public init(_ bytes: [UInt8], start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = min(end ?? bytes.count, bytes.count)
    }

    /// Bytes left.
    public var remaining: Int { end - offset }

    @inline(__always)
    private mutating func need(_ n: Int, _ field: String) throws(WireError) {
        guard n >= 0, remaining >= n else {
            throw WireError.truncated(field: field, offset: offset, needed: n, available: remaining)
        }
    }

    /// One byte.
    public mutating func u8(_ field: String) throws(WireError) -> UInt8 {
        try need(1, field)
        defer { offset += 1 }
        return bytes[offset]
    }
    /// A little-endian UInt16.
    public mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        try need(2, field)
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }
    /// A little-endian UInt32.
    public mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        try need(4, field)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << UInt32(8 * i) }
        offset += 4
        return v
    }
    /// A little-endian UInt64.
    public mutating func u64(_ field: String) throws(WireError) -> UInt64 {
        try need(8, field)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        offset += 8
        return v
    }
    /// A signed byte.
    public mutating func i8(_ field: String) throws(WireError) -> Int8 { Int8(bitPattern: try u8(field)) }
    /// A binary32.
    public mutating func f32(_ field: String) throws(WireError) -> Float { Float(bitPattern: try u32(field)) }
    /// A binary64.
    public mutating func f64(_ field: String) throws(WireError) -> Double { Double(bitPattern: try u64(field)) }
    /// A finite binary64.
    public mutating func finite(_ field: String) throws(WireError) -> Double {
        let v = try f64(field)
        guard v.isFinite else { throw WireError.invalidValue(field: field, reason: "\(v) is not finite") }
        return v
    }
    /// A UInt16-length-prefixed UTF-8 string (invalid UTF-8 is an error).
    public mutating func string(_ field: String) throws(WireError) -> String {
        let n = Int(try u16(field + ".length"))
        try need(n, field)
        let slice = bytes[offset..<(offset + n)]
        offset += n
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw WireError.invalidValue(field: field, reason: "not valid UTF-8")
        }
        return s
    }
    /// `n` raw bytes.
    public mutating func raw(_ n: Int, _ field: String) throws(WireError) -> [UInt8] {
        try need(n, field)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }
    /// A UInt32-length-prefixed block, returned as a reader over it (nothing copied).
    public mutating func block(_ field: String, limit: Int) throws(WireError) -> ByteReader {
        let n = Int(try u32(field + ".length"))
        guard n <= limit else { throw WireError.tooLarge(field: field, declared: n, limit: limit) }
        try need(n, field)
        let r = ByteReader(bytes, start: offset, end: offset + n)
        offset += n
        return r
    }
    /// An unsigned LEB128 varint of at most 10 bytes.
    public mutating func varint(_ field: String) throws(WireError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<10 {
            let b = try u8(field)
            // The 10th byte holds bit 63 only: anything more does not fit 64 bits.
            if shift == 63 && b & 0x7E != 0 {
                throw WireError.invalidValue(field: field, reason: "varint overflows 64 bits")
            }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
        throw WireError.invalidValue(field: field, reason: "varint longer than 10 bytes")
    }
    /// A count bounded by `limit`.
    public mutating func count(_ field: String, limit: Int) throws(WireError) -> Int {
        let n = Int(try u32(field))
        guard n <= limit else { throw WireError.tooLarge(field: field, declared: n, limit: limit) }
        return n
    }
    /// Fails when bytes remain and the sender's minor version is not newer than ours (extra fields of a newer
    /// minor version are skipped).
    public func finish(_ field: String, senderMinor: UInt8) throws(WireError) {
        if remaining > 0 && senderMinor <= ProtocolVersion.current.minor {
            throw WireError.trailingBytes(field: field, count: remaining)
        }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI and ext4.
public enum CRC32C {
    /// Eight 256-entry tables for slicing-by-8: `tables[0]` is the bytewise table, `tables[k][i]` the CRC of byte
    /// `i` followed by `k` zero bytes. Eight bytes are folded per step (several times faster than one at a time).
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let previous = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return t
    }()

    /// The checksum of `bytes[range]`. `CRC32C.checksum(Array("123456789".utf8)) == 0xE3069283`.
    public static func checksum(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        let e = end ?? bytes.count
        tables.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { b in
                guard let base = b.baseAddress else { return }
                let raw = UnsafeRawPointer(base)
                var i = start
                while i + 8 <= e {
                    let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                    let lo = UInt32(truncatingIfNeeded: word) ^ c
                    let hi = UInt32(truncatingIfNeeded: word >> 32)
                    c =
                        t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                        ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                        ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                        ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                    i += 8
                }
                while i < e {
                    c = t[Int((c ^ UInt32(b[i])) & 0xFF)] ^ (c >> 8)
                    i += 1
                }
            }
        }
        return c ^ 0xFFFF_FFFF
    }
}
