import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One ZeroMQ socket, owned once: closed by `close()` or `deinit`. Not thread-safe: confine it to one thread.
public final class ZMQSocket {
    private var handle: UnsafeMutableRawPointer?
    /// The context, kept alive as long as the socket.
    public let context: ZMQContext

    /// Creates a socket with `linger` set to `lingerMs` so closing never hangs.
    public init(context: ZMQContext, type: ZMQSocketType, lingerMs: Int32 = 0) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, type.rawValue) else { throw ZMQError("zmq_socket") }
        self.handle = h
        self.context = context
        try set(ZMQ_LINGER, lingerMs)
    }

    deinit { close() }

    /// Closes the socket (idempotent).
    public func close() {
        if let h = handle {
            zmq_close(h)
            handle = nil
        }
    }

    /// The libzmq handle, for `zmq_poll` (never escapes the module).
    func rawHandle() throws(ZMQError) -> UnsafeMutableRawPointer { try live("zmq_poll") }

    private func live(_ op: String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let h = handle else { throw ZMQError(op, code: ENOTSOCK) }
        return h
    }

    /// Sets an integer option.
    public func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        let h = try live("zmq_setsockopt")
        guard zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError("zmq_setsockopt(\(option))")
        }
    }

    /// Sets a 64-bit integer option.
    public func set(_ option: Int32, int64 value: Int64) throws(ZMQError) {
        var v = value
        let h = try live("zmq_setsockopt")
        guard zmq_setsockopt(h, option, &v, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError("zmq_setsockopt(\(option))")
        }
    }

    /// Sets a binary or string option.
    public func set(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let h = try live("zmq_setsockopt")
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    /// Binds to `endpoint`, e.g. `tcp://127.0.0.1:5555` or `tcp://127.0.0.1:*`.
    public func bind(_ endpoint: String) throws(ZMQError) {
        let h = try live("zmq_bind")
        guard zmq_bind(h, endpoint) == 0 else { throw ZMQError("zmq_bind(\(endpoint))") }
    }

    /// Unbinds from `endpoint` (for `inproc://`, the name is free again when this returns; closing a socket
    /// frees it only later, on libzmq's reaper thread).
    public func unbind(_ endpoint: String) throws(ZMQError) {
        let h = try live("zmq_unbind")
        guard zmq_unbind(h, endpoint) == 0 else { throw ZMQError("zmq_unbind(\(endpoint))") }
    }

    /// Connects to `endpoint`.
    public func connect(_ endpoint: String) throws(ZMQError) {
        let h = try live("zmq_connect")
        guard zmq_connect(h, endpoint) == 0 else { throw ZMQError("zmq_connect(\(endpoint))") }
    }

    /// The endpoint last bound (resolves `*` ports).
    public func lastEndpoint() throws(ZMQError) -> String {
        let h = try live("zmq_getsockopt")
        var buf = [CChar](repeating: 0, count: 256)
        var size = buf.count
        guard zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buf, &size) == 0 else {
            throw ZMQError("zmq_getsockopt(LAST_ENDPOINT)")
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sends a multipart message. With `dontWait`, a full queue is `EAGAIN`.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) {
        let h = try live("zmq_send")
        for (i, f) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if i < frames.count - 1 { flags |= ZMQ_SNDMORE }
            while true {
                let rc = f.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, flags) }
                if rc >= 0 { break }
                let e = zmq_errno()
                if e == EINTR { continue }
                throw ZMQError("zmq_send", code: e)
            }
        }
    }

    /// Receives one multipart message, waiting at most `timeoutMs` (−1: forever). Returns nil on timeout.
    public func receive(timeoutMs: Int32) throws(ZMQError) -> [[UInt8]]? {
        try receiveMessage(timeoutMs: timeoutMs)?.frames
    }

    /// Receives one multipart message with its metadata, waiting at most `timeoutMs` (−1: forever). Returns
    /// nil on timeout. Each frame is copied out of its `zmq_msg_t` inside one scope; no pointer escapes.
    public func receiveMessage(timeoutMs: Int32) throws(ZMQError) -> ZMQMessage? {
        guard try poll(timeoutMs: timeoutMs) else { return nil }
        let h = try live("zmq_msg_recv")
        var frames: [[UInt8]] = []
        var userId: String? = nil
        while true {
            var msg = zmq_msg_t()
            zmq_msg_init(&msg)
            defer { zmq_msg_close(&msg) }
            var rc: Int32
            repeat {
                rc = zmq_msg_recv(&msg, h, ZMQ_DONTWAIT)
            } while rc < 0 && zmq_errno() == EINTR
            if rc < 0 {
                let e = zmq_errno()
                if e == EAGAIN && frames.isEmpty { return nil }
                throw ZMQError("zmq_msg_recv", code: e)
            }
            let size = zmq_msg_size(&msg)
            if let data = zmq_msg_data(&msg), size > 0 {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            // The User-Id the ZAP handler gave this connection (the Z85 CURVE key); none in plain mode.
            if userId == nil, let property = zmq_msg_gets(&msg, "User-Id") {
                let text = String(cString: property)
                if !text.isEmpty { userId = text }
            }
            if zmq_msg_more(&msg) == 0 { break }
        }
        return ZMQMessage(frames: frames, userId: userId)
    }

    /// Waits until a message can be received, at most `timeoutMs`. A signal (EINTR) ends the wait early with
    /// `false`, like a timeout, so that a caller looping on it sees its shutdown flag.
    public func poll(timeoutMs: Int32) throws(ZMQError) -> Bool {
        let h = try live("zmq_poll")
        var item = zmq_pollitem_t(socket: h, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, Int(timeoutMs))
        if rc >= 0 { return rc > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0 }
        let e = zmq_errno()
        if e == EINTR { return false }
        throw ZMQError("zmq_poll", code: e)
    }

    /// Starts a monitor of `events` on `inproc://name`.
    public func monitor(_ endpoint: String, events: Int32) throws(ZMQError) {
        let h = try live("zmq_socket_monitor")
        guard zmq_socket_monitor(h, endpoint, events) == 0 else { throw ZMQError("zmq_socket_monitor") }
    }
}
