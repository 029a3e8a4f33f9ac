import CZmq
import Foundation
import Synchronization

/// The set of node public keys a coordinator accepts, read from an allow-list file: one Z85 key per line,
/// `#` starts a comment, blank lines are ignored.
public struct AllowList: Hashable, Sendable {
    /// The accepted keys, Z85.
    public var keys: Set<String>

    /// An allow-list of `keys` (each must be a valid Z85 CURVE key).
    public init(keys: Set<String>) { self.keys = keys }

    /// Parses the text of an allow-list file; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws(SecurityError) -> AllowList {
        var keys: Set<String> = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let key = line.trimmingCharacters(in: .whitespaces)
            if key.isEmpty { continue }
            guard CurveKeyPair.decode(z85: key) != nil else {
                throw SecurityError("\(path) line \(i + 1): '\(key.prefix(60))' is not a 40-character Z85 CURVE public key")
            }
            keys.insert(key)
        }
        return AllowList(keys: keys)
    }

    /// Reads an allow-list file.
    public static func load(path: String) throws(SecurityError) -> AllowList {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecurityError("cannot read allow-list \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }
}

/// A security set-up that cannot be used.
public struct SecurityError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// ZeroMQ Authentication Protocol (RFC 27) handler: answers libzmq's CURVE authentication requests from a
/// thread of its own, accepting only client keys in the allow-list.
public final class ZAPHandler: Sendable {
    /// Requests accepted so far.
    public var accepted: Int { counts.withLock { $0.accepted } }
    /// Requests refused so far.
    public var rejected: Int { counts.withLock { $0.rejected } }

    private let counts = Mutex((accepted: 0, rejected: 0))
    private let stopFlag = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)
    private let ready = Atomic<Int>(0)  // 0 starting, 1 bound, 2 failed

    /// Binds the handler in `context` (before any CURVE server socket of that context accepts peers) and
    /// starts its thread.
    public init(context: ZMQContext, allowList: AllowList) throws(ZMQError) {
        let keys = Set(allowList.keys.compactMap { CurveKeyPair.decode(z85: $0) })
        let thread = Thread { [self] in
            self.serve(context: context, keys: keys)
        }
        thread.name = "apt-zap"
        thread.start()
        while ready.load(ordering: .acquiring) == 0 { usleep(1000) }
        if ready.load(ordering: .acquiring) == 2 { throw ZMQError("zmq_bind(inproc://zeromq.zap.01)", code: EADDRINUSE) }
    }

    /// Stops the thread and waits for it.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        while !done.load(ordering: .acquiring) { usleep(1000) }
    }

    deinit { stop() }

    private func serve(context: ZMQContext, keys: Set<[UInt8]>) {
        defer { done.store(true, ordering: .releasing) }
        guard let socket = try? ZMQSocket(context: context, type: .rep), (try? socket.bind("inproc://zeromq.zap.01")) != nil
        else {
            ready.store(2, ordering: .releasing)
            return
        }
        ready.store(1, ordering: .releasing)
        while !stopFlag.load(ordering: .acquiring) {
            guard let frames = try? socket.receive(timeoutMs: 50) else { continue }
            // Request: version, request id, domain, address, identity, mechanism, credentials…
            guard frames.count >= 6 else { continue }
            let requestId = frames[1]
            var ok = false
            if String(decoding: frames[5], as: UTF8.self) == "CURVE", frames.count >= 7, keys.contains(frames[6]) {
                ok = true
            }
            counts.withLock { ok ? ($0.accepted += 1) : ($0.rejected += 1) }
            let reply: [[UInt8]] = [
                Array("1.0".utf8), requestId, Array((ok ? "200" : "400").utf8),
                Array((ok ? "OK" : "client key not in allow-list").utf8), [], [],
            ]
            try? socket.send(reply)
        }
        socket.close()
    }
}
