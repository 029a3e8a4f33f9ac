import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A state directory that cannot be used, naming the file and what was wrong.
public struct StateError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file or directory.
    public var path: String
    /// What was wrong.
    public var reason: String
    /// Creates an error.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// `--state-dir`: the node's state in `state.json`, written atomically (a temporary file in the same directory,
/// fsynced, renamed over the old one, the directory fsynced), so a power loss leaves either the old state or
/// the new one, never a torn file. A corrupt or foreign state file is refused by name and left as it is.
public struct NodeStateStore: Sendable {
    /// The directory.
    public let directory: String
    /// The state file.
    public var path: String { directory + "/state.json" }

    /// Uses `directory`, creating it (mode 0700) when it does not exist.
    public init(directory: String) throws(StateError) {
        self.directory = directory
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StateError(path: directory, reason: "is not a directory") }
        } else {
            guard mkdir(directory, 0o700) == 0 else {
                throw StateError(path: directory, reason: "cannot create: \(String(cString: strerror(errno)))")
            }
        }
        guard access(directory, W_OK) == 0 else {
            throw StateError(path: directory, reason: "not writable: \(String(cString: strerror(errno)))")
        }
    }

    /// The saved state of `identity`, or nil in a fresh directory. A state left mid-round (a crash) comes back
    /// with its commitment counted as spent.
    public func load(identity: String) throws(StateError) -> NodeState? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) { throw StateError(path: path, reason: "cannot be read") }
            return nil
        }
        var state: NodeState
        do {
            state = try JSONDecoder().decode(NodeState.self, from: data)
        } catch {
            throw StateError(path: path, reason: "is corrupt (\(error)); move it away to start this node afresh")
        }
        guard state.version == 1 else {
            throw StateError(path: path, reason: "has format version \(state.version), this node writes 1")
        }
        guard state.identity == identity else {
            throw StateError(path: path, reason: "belongs to node \(state.identity), not \(identity)")
        }
        guard state.spentJ.isFinite, state.spentJ >= 0, state.committedJ.isFinite, state.committedJ >= 0 else {
            throw StateError(path: path, reason: "holds a negative or non-finite energy figure")
        }
        state.recoverAfterCrash()
        return state
    }

    /// Writes `state` atomically.
    public func save(_ state: NodeState) throws(StateError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(state)
        } catch {
            throw StateError(path: path, reason: "cannot encode the state: \(error)")
        }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StateError(path: temporary, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            throw StateError(path: path, reason: "cannot write: \(String(cString: strerror(failure)))")
        }
        // The rename itself is durable only once the directory is synced.
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }
}
