import APTCore
import APTProtocol

/// Facts about the coordinator build.
public enum Coordinator {
    /// The protocol version the coordinator speaks.
    public static let protocolVersion = ProtocolVersion.current
}
