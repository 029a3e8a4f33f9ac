import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a command writes: standard output and standard error, or (in tests) a recording.
public struct Console: Sendable {
    /// The two streams.
    public enum Stream: Sendable {
        /// Standard output: results.
        case output
        /// Standard error: errors, progress and logs.
        case error
    }

    private let sink: @Sendable (Stream, String) -> Void
    /// Whether standard error is a terminal (progress is shown only then).
    public let errorIsTerminal: Bool

    /// A console writing through `sink`.
    public init(errorIsTerminal: Bool, sink: @escaping @Sendable (Stream, String) -> Void) {
        self.errorIsTerminal = errorIsTerminal
        self.sink = sink
    }

    /// The process's standard output and standard error.
    public static var standard: Console {
        Console(errorIsTerminal: isatty(2) == 1) { stream, text in
            writeAll(stream == .output ? 1 : 2, text)
        }
    }

    /// Writes `text` to standard output.
    public func out(_ text: String) { sink(.output, text) }

    /// Writes `text` to standard error.
    public func err(_ text: String) { sink(.error, text) }

    /// Rewrites the current terminal line of standard error with `text` (no newline).
    public func progress(_ text: String) { err("\r\u{1B}[K" + text) }

    /// Ends a progress line.
    public func endProgress() { err("\r\u{1B}[K") }

    /// Writes all of `text` to `fd`, retrying on EINTR and short writes.
    static func writeAll(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

/// A console that keeps what was written, for tests of commands run in-process.
public final class RecordingConsole: Sendable {
    private let state = Mutex((output: "", error: ""))

    /// Creates an empty recording.
    public init() {}

    /// What was written to standard output.
    public var output: String { state.withLock { $0.output } }
    /// What was written to standard error.
    public var error: String { state.withLock { $0.error } }

    /// A console writing into this recording.
    public func console(errorIsTerminal: Bool = false) -> Console {
        Console(errorIsTerminal: errorIsTerminal) { [self] stream, text in
            state.withLock {
                if stream == .output {
                    $0.output += text
                } else {
                    $0.error += text
                }
            }
        }
    }
}
