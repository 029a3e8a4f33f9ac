/// One received multipart ZeroMQ message and the metadata of the connection it came on.
public struct ZMQMessage: Hashable, Sendable {
    /// The frames, in order (a ROUTER's first frame is the sender's routing id).
    public var frames: [[UInt8]]
    /// The connection's `User-Id` property: what the ZAP handler answered for it (for CURVE, the sender's
    /// public key in Z85), or nil.
    public var userId: String?

    /// Creates a message.
    public init(frames: [[UInt8]], userId: String? = nil) {
        self.frames = frames
        self.userId = userId
    }
}
