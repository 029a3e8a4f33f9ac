import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A CURVE key pair in Z85 text (40 characters each).
public struct CurveKeyPair: Hashable, Sendable {
    /// Public key, Z85.
    public var publicKey: String
    /// Secret key, Z85.
    public var secretKey: String

    /// Creates a pair from existing keys.
    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (needs libzmq built with CURVE).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw ZMQError("zmq_curve_keypair") }
        return CurveKeyPair(
            publicKey: String(decoding: pub.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
            secretKey: String(decoding: sec.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// The pair of a secret key (its public key derived by libzmq), or nil when `secretKey` is not a Z85 key.
    public static func derive(secretKey: String) -> CurveKeyPair? {
        guard decode(z85: secretKey) != nil else { return nil }
        var pub = [CChar](repeating: 0, count: 41)
        let sec = Array(secretKey.utf8CString)
        guard zmq_curve_public(&pub, sec) == 0 else { return nil }
        return CurveKeyPair(
            publicKey: String(decoding: pub.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
            secretKey: secretKey)
    }

    /// The 32 raw bytes of a Z85 key, or nil when it is not one.
    public static func decode(z85 key: String) -> [UInt8]? {
        let text = Array(key.utf8)
        guard text.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = (text + [0]).withUnsafeBufferPointer { t in
            t.withMemoryRebound(to: CChar.self) { c in zmq_z85_decode(&out, c.baseAddress) != nil }
        }
        return ok ? out : nil
    }

    /// The Z85 text of 32 raw key bytes.
    public static func encode(raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&out, raw, 32) != nil else { return nil }
        return String(decoding: out.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
