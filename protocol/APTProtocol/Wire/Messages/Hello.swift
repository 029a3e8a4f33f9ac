import APTCore

/// Node introduction.
public struct Hello: Hashable, Sendable {
    /// Human-readable node name.
    public var name: String
    /// The protocol version the node speaks.
    public var version: ProtocolVersion
    /// The node's device profile.
    public var profile: DeviceProfile
    /// Total energy the node may spend, J.
    public var energyBudgetJ: Double
    /// Memory the node may use for training, bytes.
    public var memoryBudgetBytes: UInt64
    /// Local training samples.
    public var localSamples: UInt64
    /// What the node can do.
    public var capabilities: Capabilities
    /// Creates a HELLO.
    public init(
        name: String, version: ProtocolVersion = .current, profile: DeviceProfile, energyBudgetJ: Double,
        memoryBudgetBytes: UInt64, localSamples: UInt64, capabilities: Capabilities
    ) {
        self.name = name
        self.version = version
        self.profile = profile
        self.energyBudgetJ = energyBudgetJ
        self.memoryBudgetBytes = memoryBudgetBytes
        self.localSamples = localSamples
        self.capabilities = capabilities
    }
}
