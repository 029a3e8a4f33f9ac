#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a run is, for progress displays.
public struct TrainingProgress: Sendable {
    /// 1-based epoch.
    public var epoch: Int
    /// Epochs in all.
    public var epochs: Int
    /// Steps done in this epoch.
    public var step: Int
    /// Steps per epoch.
    public var stepsPerEpoch: Int
    /// Running mean training loss of the epoch.
    public var loss: Double
    /// Current weight bits per weighted layer.
    public var bits: [Int]
    /// Energy so far, J.
    public var energyJ: Double
}
