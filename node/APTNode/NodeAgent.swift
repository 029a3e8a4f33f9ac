import APTCore
import APTProtocol

/// Facts about the node agent build.
public enum NodeAgent {
    /// The protocol version the agent speaks.
    public static let protocolVersion = ProtocolVersion.current
}
