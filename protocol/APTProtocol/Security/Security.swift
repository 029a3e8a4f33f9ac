import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a connection is secured.
public enum Security: Hashable, Sendable {
    /// No encryption or authentication: explicit, and warned about unless on loopback.
    case plain
    /// Coordinator side of CURVE: its key pair and the node keys it accepts.
    case curveServer(keys: CurveKeyPair, allowList: AllowList)
    /// Node side of CURVE: its key pair and the coordinator's pinned public key.
    case curveClient(keys: CurveKeyPair, serverPublicKey: String)

    /// The routing id a node must use under this mode: its Z85 public key for a CURVE client, else nil (plain
    /// mode: the node's name).
    public var routingId: [UInt8]? {
        if case .curveClient(let keys, _) = self { return Array(keys.publicKey.utf8) }
        return nil
    }

    /// Whether this is the coordinator side of CURVE.
    public var isServer: Bool {
        if case .curveServer = self { return true }
        return false
    }

    /// Whether this is the node side of CURVE.
    public var isClient: Bool {
        if case .curveClient = self { return true }
        return false
    }

    /// Sets the socket options of this mode on `socket` before it binds or connects. The server side also
    /// starts the ZAP handler in `context` and returns it (the caller stops it if a later step fails).
    func configure(_ socket: ZMQSocket, context: ZMQContext) throws -> ZAPHandler? {
        switch self {
        case .plain:
            return nil
        case .curveServer(let keys, let allow):
            guard let secret = CurveKeyPair.decode(z85: keys.secretKey) else {
                throw SecurityError("coordinator secret key is not a 40-character Z85 key")
            }
            let zap = try ZAPHandler(context: context, allowList: allow)
            do {
                try socket.set(ZMQ_ZAP_DOMAIN, bytes: Array("apt-fleet".utf8))
                try socket.set(ZMQ_CURVE_SERVER, 1)
                try socket.set(ZMQ_CURVE_SECRETKEY, bytes: secret)
            } catch {
                zap.stop()
                throw error
            }
            return zap
        case .curveClient(let keys, let server):
            guard let serverKey = CurveKeyPair.decode(z85: server) else {
                throw SecurityError("coordinator public key is not a 40-character Z85 key")
            }
            guard let pub = CurveKeyPair.decode(z85: keys.publicKey), let sec = CurveKeyPair.decode(z85: keys.secretKey)
            else {
                throw SecurityError("node key pair is not two 40-character Z85 keys")
            }
            try socket.set(ZMQ_CURVE_SERVERKEY, bytes: serverKey)
            try socket.set(ZMQ_CURVE_PUBLICKEY, bytes: pub)
            try socket.set(ZMQ_CURVE_SECRETKEY, bytes: sec)
            return nil
        }
    }

    /// Whether `endpoint` stays on this machine: `inproc://`, `ipc://`, or TCP to 127.0.0.0/8, `localhost` or
    /// `[::1]`.
    public static func isLoopback(endpoint: String) -> Bool {
        if endpoint.hasPrefix("inproc://") || endpoint.hasPrefix("ipc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var rest = Substring(endpoint.dropFirst("tcp://".count))
        // A connect endpoint may name a source address first: "tcp://src;dst".
        if let semi = rest.lastIndex(of: ";") { rest = rest[rest.index(after: semi)...] }
        let host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return false }
            host = rest[rest.index(after: rest.startIndex)..<close]
        } else {
            host = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        }
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        // 127.0.0.0/8, as a dotted-quad literal (a name such as "127.example.org" is not loopback).
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// The warning to print for plain mode on a non-loopback endpoint, or nil.
    public static func plainWarning(endpoint: String) -> String? {
        isLoopback(endpoint: endpoint)
            ? nil
            : "plain (unencrypted, unauthenticated) transport on \(endpoint): anyone on the network can read and send "
                + "messages; use CURVE (--secret-key/--allow-list) off loopback"
    }
}
