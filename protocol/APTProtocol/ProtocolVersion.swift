/// The wire protocol's version. A peer with another major version is refused; a newer minor version's
/// extra fields are skipped.
public struct ProtocolVersion: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Incompatible changes bump this.
    public var major: UInt8
    /// Compatible additions bump this.
    public var minor: UInt8
    /// Creates a version.
    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }
    /// The version this build speaks.
    public static let current = ProtocolVersion(major: 1, minor: 0)
    public var description: String { "\(major).\(minor)" }
}
