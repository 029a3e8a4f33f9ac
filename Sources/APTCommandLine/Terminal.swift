#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard streams and exit codes for the command-line tools.
public enum Terminal {
    /// Exit status for bad usage (sysexits EX_USAGE).
    public static let usageExit: Int32 = 64
    /// Exit status for a failure at run time.
    public static let failureExit: Int32 = 1

    /// Writes `text` to standard output.
    public static func out(_ text: String) { writeAll(1, text) }

    /// Writes `text` to standard error.
    public static func err(_ text: String) { writeAll(2, text) }

    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            off += n
        }
        bytes.removeAll()
    }

    /// Whether standard error is a terminal (progress is shown only then).
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }

    /// Prints `Error: …`, the usage line and the help hint for `spec`, and exits with status 64.
    public static func usageFailure(_ message: String, spec: CommandSpec) -> Never {
        err("Error: \(message)\nUsage: \(spec.usage)\n  See '\(spec.name) --help' for more information.\n")
        exit(usageExit)
    }

    /// Prints `Error: …` and exits with status 1.
    public static func failure(_ message: String) -> Never {
        err("Error: \(message)\n")
        exit(failureExit)
    }

    /// Rewrites the current terminal line with `text` (no newline).
    public static func progress(_ text: String) {
        err("\r\u{1B}[K" + text)
    }

    /// Ends a progress line.
    public static func endProgress() { err("\r\u{1B}[K") }
}
