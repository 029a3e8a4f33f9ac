import APTCore
import APTProtocol
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
    /// with its commitment counted as spent. A state of the same `name` under another identity is a key
    /// rotation: it comes back as it is, for the caller to `rotate(to:)`; a state of another node is refused.
    public func load(identity: String, name: String? = nil) throws(StateError) -> NodeState? {
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
        guard state.identity == identity || (name != nil && state.name == name) else {
            throw StateError(
                path: path, reason: "belongs to node \(state.name ?? state.identity), not \(name ?? identity)")
        }
        guard state.spentJ.isFinite, state.spentJ >= 0, state.committedJ.isFinite, state.committedJ >= 0,
            (state.chargedBeforeIdentityJ ?? 0).isFinite, (state.chargedBeforeIdentityJ ?? 0) >= 0
        else {
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
        try writeAtomically([UInt8](data), to: path)
    }

    /// The error-feedback residual file.
    public var residualPath: String { directory + "/residual.bin" }

    /// Writes the error-feedback residual (per tensor index) atomically: `APTR`, a `u32` tensor count, then per
    /// tensor its index (`u16`), value count (`u32`) and float32 values, all little-endian, then a CRC-32C of
    /// everything before it.
    public func saveResidual(_ residuals: [UInt16: [Float]]) throws(StateError) {
        var w = ByteWriter()
        w.raw(Array("APTR".utf8))
        w.u32(UInt32(residuals.count))
        for (index, values) in residuals.sorted(by: { $0.key < $1.key }) {
            w.u16(index)
            w.u32(UInt32(values.count))
            for v in values { w.f32(v) }
        }
        let body = w.bytes
        w.u32(CRC32C.checksum(body))
        try writeAtomically(w.bytes, to: residualPath)
    }

    /// The saved residual, or nil when there is none; every tensor must have its size in `sizes` (index → count).
    /// A damaged file is refused by name and left as it is.
    public func loadResidual(sizes: [UInt16: Int]) throws(StateError) -> [UInt16: [Float]]? {
        guard let data = FileManager.default.contents(atPath: residualPath) else { return nil }
        let bytes = [UInt8](data)
        func damaged(_ why: String) -> StateError {
            StateError(path: residualPath, reason: "is damaged (\(why)); move it away to start without a residual")
        }
        guard bytes.count >= 12, bytes.prefix(4) == [0x41, 0x50, 0x54, 0x52] else { throw damaged("no APTR header") }
        var tail = ByteReader(bytes, start: bytes.count - 4)
        let crc: UInt32
        do {
            crc = try tail.u32("crc")
        } catch {
            throw damaged("\(error)")
        }
        guard CRC32C.checksum(bytes, from: 0, to: bytes.count - 4) == crc else { throw damaged("checksum mismatch") }
        var r = ByteReader(bytes, start: 4, end: bytes.count - 4)
        var out: [UInt16: [Float]] = [:]
        do {
            let n = Int(try r.u32("residual.count"))
            for _ in 0..<n {
                let index = try r.u16("residual.index")
                let count = Int(try r.u32("residual.values"))
                guard let expected = sizes[index], expected == count else {
                    throw damaged("tensor \(index) has \(count) values, the model's has \(sizes[index] ?? 0)")
                }
                var values = [Float](repeating: 0, count: count)
                for i in 0..<count { values[i] = try r.f32("residual.value") }
                guard values.allSatisfy(\.isFinite) else { throw damaged("tensor \(index) holds a non-finite value") }
                out[index] = values
            }
        } catch let e as StateError {
            throw e
        } catch {
            throw damaged("\(error)")
        }
        return out
    }

    /// Writes `bytes` over `target` atomically (`FileWriter.replace`: temporary file, fsync, rename, directory
    /// fsync): a power loss leaves the old file or the new one.
    func writeAtomically(_ bytes: [UInt8], to target: String) throws(StateError) {
        let failure = FileWriter.replace(target, with: bytes)
        guard failure == 0 else {
            throw StateError(path: target, reason: "cannot write: \(String(cString: strerror(failure)))")
        }
    }
}
