import APTCore

@testable import APTProtocol

/// A frame built by hand around `payload` (header fields as given), for tests of the decoder's checks.
func rawFrame(
    type: MessageType, payload: [UInt8], major: UInt8 = ProtocolVersion.current.major,
    minor: UInt8 = ProtocolVersion.current.minor, checksum: UInt32? = nil
) -> [UInt8] {
    var w = ByteWriter()
    w.raw(Frame.magic)
    w.u8(major)
    w.u8(minor)
    w.u8(type.rawValue)
    w.u8(0)
    w.u32(UInt32(payload.count))
    w.u32(checksum ?? CRC32C.checksum(payload))
    w.raw(payload)
    return w.bytes
}

/// Transport options with short intervals, for tests on loopback.
let fastTransport = TransportOptions(
    lingerMs: 0, reconnectIntervalMs: 50, reconnectIntervalMaxMs: 200,
    heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1000, heartbeatTTLMs: 1000)

/// Receives on `router` until a message arrives or `ms` pass.
func receive(_ router: RouterEndpoint, within ms: UInt64) throws -> Incoming? {
    let end = MonotonicClock.milliseconds() + ms
    while MonotonicClock.milliseconds() < end {
        if let i = try router.receive(timeoutMs: 50) { return i }
    }
    return nil
}
