import APTCore

/// Coordinator acceptance.
public struct Welcome: Hashable, Sendable {
    /// The id the coordinator assigned.
    public var nodeId: UInt32
    /// The model every node trains.
    public var model: ModelSpec
    /// The node's policy.
    public var policy: Policy
    /// Creates a WELCOME.
    public init(nodeId: UInt32, model: ModelSpec, policy: Policy) {
        self.nodeId = nodeId
        self.model = model
        self.policy = policy
    }
}
