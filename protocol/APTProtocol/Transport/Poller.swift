import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wakes a `Poller` from any thread: a pipe whose read end the poller watches.
public final class Waker: Sendable {
    let readFD: Int32
    let writeFD: Int32

    /// Creates the pipe (non-blocking, close-on-exec).
    public init() throws(ZMQError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ZMQError("pipe", code: errno) }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        close(readFD)
        close(writeFD)
    }

    /// Interrupts the poller's current or next wait. Safe from any thread and from a signal handler's
    /// perspective (one `write` of one byte; a full pipe already means "woken").
    public func wake() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    /// Empties the pipe after a wake-up.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(readFD, &buffer, buffer.count) > 0 {}
    }
}

/// Waits on several ZeroMQ sockets and a `Waker` at once (`zmq_poll`). Confined to the thread that owns the
/// sockets; only the waker is shared.
public final class Poller {
    /// What a wait found.
    public struct Result: Hashable, Sendable {
        /// Indices (into the sockets given) of the sockets with a message to receive.
        public var readable: [Int]
        /// Whether the waker was woken.
        public var woken: Bool
        /// Whether a signal interrupted the wait (EINTR): the caller checks its shutdown flag.
        public var interrupted: Bool
        /// Whether nothing happened before the timeout.
        public var timedOut: Bool { readable.isEmpty && !woken && !interrupted }
    }

    /// The waker another thread uses to interrupt `wait`.
    public let waker: Waker

    /// Creates a poller with its waker.
    public init() throws(ZMQError) {
        waker = try Waker()
    }

    /// Waits until one of `sockets` can be read, the waker is woken, a signal arrives, or `timeoutMs` pass
    /// (−1: no limit).
    public func wait(_ sockets: [ZMQSocket], timeoutMs: Int32) throws(ZMQError) -> Result {
        var items: [zmq_pollitem_t] = []
        for s in sockets {
            items.append(zmq_pollitem_t(socket: try s.rawHandle(), fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
        }
        items.append(zmq_pollitem_t(socket: nil, fd: waker.readFD, events: Int16(ZMQ_POLLIN), revents: 0))
        let rc = zmq_poll(&items, Int32(items.count), Int(timeoutMs))
        if rc < 0 {
            let e = zmq_errno()
            if e == EINTR { return Result(readable: [], woken: false, interrupted: true) }
            throw ZMQError("zmq_poll", code: e)
        }
        let readable = sockets.indices.filter { items[$0].revents & Int16(ZMQ_POLLIN) != 0 }
        let woken = items[sockets.count].revents & Int16(ZMQ_POLLIN) != 0
        if woken { waker.drain() }
        return Result(readable: readable, woken: woken, interrupted: false)
    }
}
