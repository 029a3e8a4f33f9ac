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

extension CommandSpec {
    /// Parses `arguments`; on bad usage prints the error and exits 64, on `--help` prints the help and exits 0.
    public func parseOrExit(_ arguments: [String]) -> ParsedArguments {
        let args: ParsedArguments
        do {
            args = try parseArguments(arguments, spec: self)
        } catch {
            Terminal.usageFailure(error.message, spec: self)
        }
        if args.helpRequested {
            Terminal.out(helpText)
            exit(0)
        }
        return args
    }

    /// Runs the subcommand named by the first argument with the rest, printing help for `-h`, `--help` or
    /// `help`, and a usage error (with a suggestion) for an unknown name or none.
    public func dispatch(_ arguments: [String], to handlers: [String: ([String]) -> Never]) -> Never {
        guard let first = arguments.first else {
            Terminal.err(helpText)
            exit(Terminal.usageExit)
        }
        if first == "-h" || first == "--help" || first == "help" {
            Terminal.out(helpText)
            exit(0)
        }
        guard let handler = handlers[first] else {
            let hint = closest(first, among: subcommands.map(\.name)).map { " Did you mean '\($0)'?" } ?? ""
            Terminal.usageFailure("Unknown subcommand '\(first)'.\(hint)", spec: self)
        }
        handler(Array(arguments.dropFirst()))
    }
}
