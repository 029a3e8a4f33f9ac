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

    /// Replaces the file at `path` with `bytes` so that a reader or a power loss sees the old file or the new one,
    /// never a torn one: a temporary file beside it (`path.tmp`, created with `mode`) is written, fsynced and
    /// renamed over `path`, then the directory is fsynced. Returns 0, or the `errno` of the step that failed
    /// (the temporary file is removed then).
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) -> Int32 {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return errno }
        var failure = writeAll(fd, bytes)
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            return failure
        }
        // The rename itself is durable only once the directory is synced.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
        return 0
    }
}
