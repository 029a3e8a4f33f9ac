import APTCore

/// Exponential reconnect backoff with a cap and seeded jitter (so a fleet does not reconnect in lock-step).
public struct ReconnectBackoff: Sendable {
    /// First delay, ms.
    public let initialMs: UInt64
    /// Largest delay, ms.
    public let maxMs: UInt64
    /// Attempts so far.
    public private(set) var attempt: Int = 0
    private var random: RandomSource

    /// Creates a backoff whose jitter is drawn from `seed`. Give every node its own seed
    /// (`ReconnectBackoff.seed(identity:)`), or a fleet that lost its coordinator reconnects in lock-step.
    public init(initialMs: UInt64 = 100, maxMs: UInt64 = 5000, seed: UInt64) {
        self.initialMs = initialMs
        self.maxMs = maxMs
        self.random = RandomSource(seed: seed)
    }

    /// A jitter seed for the node whose identity (CURVE public key or name) is `identity`: FNV-1a of the
    /// identity mixed with this process's start on the monotonic clock, so two nodes, or one node restarted,
    /// draw different delays.
    public static func seed(identity: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in identity { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h ^ MonotonicClock.nanoseconds()
    }

    /// The next delay: `min(max, initial · 2^attempt)`, minus up to a quarter of jitter.
    public mutating func next() -> UInt64 {
        let base = min(maxMs, initialMs << UInt64(min(attempt, 20)))
        attempt += 1
        return base - (base / 4 == 0 ? 0 : random.next() % (base / 4))
    }

    /// Resets after a successful connection.
    public mutating func reset() { attempt = 0 }
}
