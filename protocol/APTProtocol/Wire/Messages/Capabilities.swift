import APTCore

/// Capability bits a node announces in HELLO.
public struct Capabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Can train with APT.
    public static let apt = Capabilities(rawValue: 1 << 0)
    /// Accepts stochastic rounding on the codec.
    public static let stochasticRounding = Capabilities(rawValue: 1 << 1)
    /// Sends top-k sparse deltas.
    public static let topK = Capabilities(rawValue: 1 << 2)
    /// Keeps error-feedback residuals.
    public static let errorFeedback = Capabilities(rawValue: 1 << 3)
    /// Accepts a delta instead of the full model in TASK.
    public static let deltaDownlink = Capabilities(rawValue: 1 << 4)
}
