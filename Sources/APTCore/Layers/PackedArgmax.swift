/// Which position of its window each max-pooling output came from, packed at the fewest of 1, 2, 4 or 8 bits
/// that hold a window's positions (2 bits for the usual 2 × 2 window: a quarter of a byte per output).
struct PackedArgmax: Sendable {
    /// Bits per arg-max.
    let bits: Int
    /// Number of arg-maxes.
    let count: Int
    private var bytes: [UInt8]

    /// `count` zero arg-maxes for windows of `size × size`.
    init(count: Int, windowSize size: Int) {
        bits = PackedArgmax.bits(windowSize: size)
        self.count = count
        bytes = [UInt8](repeating: 0, count: PackedArgmax.byteCount(count: count, windowSize: size))
    }

    /// No arg-max (nothing kept).
    init() {
        bits = 8
        count = 0
        bytes = []
    }

    /// Bits per arg-max for windows of `size × size` (at most 15 × 15 = 225 positions: 8 bits).
    static func bits(windowSize size: Int) -> Int {
        let positions = size * size
        return positions <= 2 ? 1 : positions <= 4 ? 2 : positions <= 16 ? 4 : 8
    }

    /// Bytes of `count` arg-maxes for windows of `size × size`.
    static func byteCount(count: Int, windowSize size: Int) -> Int { (count * bits(windowSize: size) + 7) / 8 }

    /// Bytes held.
    var byteCount: Int { bytes.count }

    /// The arg-max of output `o` (row-major within the window).
    subscript(o: Int) -> Int { bytes.withUnsafeBufferPointer { PackedArgmax.read($0.baseAddress!, o, bits: bits) } }

    /// Calls `body` with a writer over the arg-maxes (which must still be zero where it writes).
    mutating func withWriter<R>(_ body: (Writer) -> R) -> R {
        let bits = self.bits
        return bytes.withUnsafeMutableBufferPointer { body(Writer(base: $0.baseAddress, bits: bits)) }
    }

    /// Calls `body` with a reader over the arg-maxes.
    func withReader<R>(_ body: (Reader) -> R) -> R {
        bytes.withUnsafeBufferPointer { body(Reader(base: $0.baseAddress, bits: bits)) }
    }

    @inline(__always)
    static func read(_ p: UnsafePointer<UInt8>, _ o: Int, bits: Int) -> Int {
        let bit = o * bits
        return Int(p[bit >> 3] >> UInt8(bit & 7)) & ((1 << bits) - 1)
    }

    /// Writes arg-maxes into zeroed packed storage.
    struct Writer {
        let base: UnsafeMutablePointer<UInt8>?
        let bits: Int

        /// Sets output `o`'s arg-max to `index` (< 2^bits).
        @inline(__always)
        func set(_ o: Int, _ index: Int64) {
            let bit = o * bits
            base![bit >> 3] |= UInt8(truncatingIfNeeded: index) << UInt8(bit & 7)
        }

        /// ORs the low `count` bits of `value` (several arg-maxes, the first in the lowest bits) into the storage
        /// from bit `position` on.
        @inline(__always)
        func or(_ value: UInt64, bits count: Int, at position: Int) {
            if count == 64 && position & 7 == 0 {
                let word = UnsafeMutableRawPointer(base! + (position >> 3))
                word.storeBytes(of: word.loadUnaligned(as: UInt64.self) | value.littleEndian, as: UInt64.self)
                return
            }
            var v = value
            var p = position
            var left = count
            while left > 0 {
                let shift = p & 7
                let take = min(8 - shift, left)
                base![p >> 3] |= UInt8(truncatingIfNeeded: v & ((1 << UInt64(take)) - 1)) << UInt8(shift)
                v >>= UInt64(take)
                p += take
                left -= take
            }
        }
    }

    /// Reads packed arg-maxes.
    struct Reader {
        let base: UnsafePointer<UInt8>?
        let bits: Int

        /// Output `o`'s arg-max.
        @inline(__always)
        subscript(o: Int) -> Int { PackedArgmax.read(base!, o, bits: bits) }
    }
}
