import APTCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A CURVE key pair on disk: `PREFIX.key` (the secret key as Z85 text, mode 0600 from its first byte) and
/// `PREFIX.pub` (the public key, mode 0644).
public struct KeyFiles: Sendable {
    /// The keys written.
    public var keys: CurveKeyPair
    /// Path of the secret key file.
    public var secretKeyPath: String
    /// Path of the public key file.
    public var publicKeyPath: String

    /// Generates a key pair and writes it. Without `overwrite`, refuses when either file exists. The secret
    /// key file is created with `O_CREAT | O_EXCL` and mode 0600 (never readable by others, not even for an
    /// instant), written, fsynced, then renamed into place.
    public static func create(prefix: String, overwrite: Bool) throws(SecurityError) -> KeyFiles {
        let secretPath = prefix + ".key"
        let publicPath = prefix + ".pub"
        // The directory part, by hand: Foundation's `deletingLastPathComponent` traps on a one-character path.
        let directory = prefix.lastIndex(of: "/").map { $0 == prefix.startIndex ? "/" : String(prefix[..<$0]) } ?? ""
        var isDirectory: ObjCBool = false
        if !directory.isEmpty,
            !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue
        {
            throw SecurityError("directory \(directory) does not exist; create it first")
        }
        if !overwrite {
            for p in [secretPath, publicPath] where access(p, F_OK) == 0 {
                throw SecurityError("\(p) exists; pass --force to overwrite it")
            }
        }
        let pair: CurveKeyPair
        do {
            pair = try CurveKeyPair.generate()
        } catch {
            throw SecurityError("cannot generate a CURVE key pair: \(error)")
        }
        try writeFile(secretPath, contents: pair.secretKey + "\n", mode: 0o600, overwrite: overwrite)
        try writeFile(publicPath, contents: pair.publicKey + "\n", mode: 0o644, overwrite: overwrite)
        return KeyFiles(keys: pair, secretKeyPath: secretPath, publicKeyPath: publicPath)
    }

    /// Reads a key file: one 40-character Z85 key (surrounding white space ignored).
    public static func readKey(path: String) throws(SecurityError) -> String {
        let key = try readText(path: path, what: "key file").trimmingCharacters(in: .whitespacesAndNewlines)
        guard CurveKeyPair.decode(z85: key) != nil else {
            throw SecurityError("\(path) does not hold a 40-character Z85 CURVE key")
        }
        return key
    }

    /// The text of a small file (at most 16 MiB), or an error naming `what`, the path and the system's reason.
    static func readText(path: String, what: String) throws(SecurityError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SecurityError("cannot read \(what) \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw SecurityError("cannot read \(what) \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            guard bytes.count <= 16 << 20 else { throw SecurityError("\(what) \(path) is over 16 MiB") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `contents` to a fresh temporary file beside `path` created with `mode` (exclusive create),
    /// fsyncs it and renames it onto `path` (refusing an existing `path` unless `overwrite`).
    static func writeFile(_ path: String, contents: String, mode: mode_t, overwrite: Bool) throws(SecurityError) {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SecurityError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        // The umask may have cleared bits of a public file's mode; the secret file's 0600 is never widened.
        fchmod(fd, mode)
        var failure = FileWriter.writeAll(fd, Array(contents.utf8))
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && !overwrite && access(path, F_OK) == 0 { failure = EEXIST }
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw SecurityError("cannot write \(path): \(String(cString: strerror(failure)))")
        }
    }
}
