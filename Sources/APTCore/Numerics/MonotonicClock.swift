#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one monotonic clock of the engine, the protocol and the tools (`CLOCK_MONOTONIC`): durations and
/// deadlines, never wall-clock time (boards often have no real-time clock).
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point.
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Milliseconds since an arbitrary fixed point.
    @inline(__always)
    public static func milliseconds() -> UInt64 { nanoseconds() / 1_000_000 }

    /// Seconds since an arbitrary fixed point.
    @inline(__always)
    public static func seconds() -> Double { Double(nanoseconds()) * 1e-9 }
}
