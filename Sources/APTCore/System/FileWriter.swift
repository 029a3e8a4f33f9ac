import Foundation

/// Writing whole buffers to POSIX file descriptors, shared by everything that writes a file durably (the node's
/// state dir, key files).
public enum FileWriter {
    /// Writes all of `bytes` to `fd`, retrying short writes and `EINTR`. Returns 0, or the `errno` of the write
    /// that failed.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { raw -> Int32 in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return 0
        }
    }
}
