extension CommandSpec {
    /// Runs one command: parses `arguments`, prints help for `--help` (exit 0), runs `body` with the parsed
    /// arguments (exit 0), and turns what it throws into the error output and exit status of a Unix tool:
    /// `UsageError` → `Error: …`, the usage line and the help hint, 64; anything else → `Error: …`, 1.
    /// Nothing here exits the process: only `main.swift` does.
    public func execute(
        _ arguments: [String], console: Console, _ body: (ParsedArguments) throws -> Void
    ) -> Int32 {
        let args: ParsedArguments
        do {
            args = try parseArguments(arguments, spec: self)
        } catch {
            return usageFailure(error.message, console: console)
        }
        if args.helpRequested {
            console.out(helpText)
            return ExitStatus.success
        }
        do {
            try body(args)
            return ExitStatus.success
        } catch let error as UsageError {
            return usageFailure(error.message, console: console)
        } catch let error as CommandFailure {
            console.err("Error: \(error.message)\n")
            return ExitStatus.failure
        } catch {
            console.err("Error: \(error)\n")
            return ExitStatus.failure
        }
    }

    /// Prints `Error: …`, the usage line and the help hint; returns 64.
    public func usageFailure(_ message: String, console: Console) -> Int32 {
        console.err("Error: \(message)\nUsage: \(usage)\n  See '\(name) --help' for more information.\n")
        return ExitStatus.usage
    }

    /// Runs the subcommand named by the first argument with the rest. `-h`, `--help` or `help` print the
    /// help (exit 0); no subcommand prints the help to standard error (exit 64); an unknown name is a usage
    /// error with a suggestion.
    public func dispatch(
        _ arguments: [String], console: Console, to handlers: [String: ([String], Console) -> Int32]
    ) -> Int32 {
        guard let first = arguments.first else {
            console.err(helpText)
            return ExitStatus.usage
        }
        if first == "-h" || first == "--help" || first == "help" {
            console.out(helpText)
            return ExitStatus.success
        }
        guard let handler = handlers[first] else {
            let hint = didYouMean(first, among: subcommands.map(\.name))
            return usageFailure("Unknown subcommand '\(first)'.\(hint)", console: console)
        }
        return handler(Array(arguments.dropFirst()), console)
    }
}
