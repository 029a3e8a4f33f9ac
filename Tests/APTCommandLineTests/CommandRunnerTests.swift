import Testing

@testable import APTCommandLine

/// Commands run in-process: what they print and the exit status of every path (0, 1, 64).
@Suite struct CommandRunnerTests {
    static let spec = CommandSpec(
        name: "tool greet", overview: "Greets someone.",
        options: [
            .value("name", "who", "Whom to greet.", required: true),
            .value("times", "n", "How often.", default: "1"),
            .value("format", "text|json", "Output format.", default: "text"),
        ])

    /// A small command written the way the real ones are.
    static func greet(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let times = try args.int("times", default: 1)
            guard times >= 1 else { throw UsageError("--times must be at least 1, got \(times)") }
            let format = try args.choice("format", among: ["text", "json"])
            let name = args.string("name", default: "")
            if name == "nobody" { throw CommandFailure("cannot greet nobody") }
            for _ in 0..<times { console.out(format == "json" ? "{\"hello\": \"\(name)\"}\n" : "hello \(name)\n") }
        }
    }

    static let root = CommandSpec(
        name: "tool", overview: "A tool.", subcommands: [("greet", "Greets someone."), ("other", "Another.")])

    static func run(_ arguments: [String]) -> (status: Int32, out: String, err: String) {
        let recording = RecordingConsole()
        let status = root.dispatch(arguments, console: recording.console(), to: ["greet": greet])
        return (status, recording.output, recording.error)
    }

    @Test func success() {
        let r = Self.run(["greet", "--name", "ada", "--times=2"])
        #expect(r.status == 0)
        #expect(r.out == "hello ada\nhello ada\n")
        #expect(r.err.isEmpty)
    }

    @Test func helpExitsZeroOnStandardOutput() {
        for arguments in [["greet", "--help"], ["greet", "-h", "--times", "x"]] {
            let r = Self.run(arguments)
            #expect(r.status == 0, "\(arguments)")
            #expect(r.out == Self.spec.helpText)
            #expect(r.err.isEmpty)
        }
        for arguments in [["--help"], ["-h"], ["help"]] {
            let r = Self.run(arguments)
            #expect(r.status == 0)
            #expect(r.out == Self.root.helpText)
        }
    }

    @Test func usageErrorsExit64WithUsageAndHint() {
        let r = Self.run(["greet", "--nmae", "ada"])
        #expect(r.status == 64)
        #expect(r.out.isEmpty)
        #expect(
            r.err == "Error: Unknown option '--nmae'. Did you mean '--name'?\n"
                + "Usage: tool greet --name <who> [options]\n  See 'tool greet --help' for more information.\n")
        // Thrown by the command's body, after parsing.
        let body = Self.run(["greet", "--name", "ada", "--times", "0"])
        #expect(body.status == 64)
        #expect(body.err.hasPrefix("Error: --times must be at least 1, got 0\nUsage: tool greet"))
        // From a typed accessor.
        let typed = Self.run(["greet", "--name", "ada", "--format", "xml"])
        #expect(typed.status == 64)
        #expect(typed.err.hasPrefix("Error: --format expects text or json, got 'xml'."))
    }

    @Test func runtimeFailureExits1WithOneErrorLine() {
        let r = Self.run(["greet", "--name", "nobody"])
        #expect(r.status == 1)
        #expect(r.err == "Error: cannot greet nobody\n")
        #expect(r.out.isEmpty)
    }

    @Test func subcommandDispatch() {
        let none = Self.run([])
        #expect(none.status == 64)
        #expect(none.err == Self.root.helpText)
        let unknown = Self.run(["gret"])
        #expect(unknown.status == 64)
        #expect(unknown.err.hasPrefix("Error: Unknown subcommand 'gret'. Did you mean 'greet'?\n"))
    }

    @Test func helpRendering() {
        let help = Self.spec.helpText
        #expect(
            help == """
                OVERVIEW: Greets someone.

                USAGE: tool greet --name <who> [options]

                OPTIONS:
                  --name <who>          Whom to greet. (required)
                  --times <n>           How often. (default: 1)
                  --format <text|json>  Output format. (default: text)
                  -h, --help            Show help information.

                """)
        #expect(
            Self.root.helpText == """
                OVERVIEW: A tool.

                USAGE: tool <subcommand> [options]

                SUBCOMMANDS:
                  greet  Greets someone.
                  other  Another.

                  See 'tool <subcommand> --help' for detailed help.

                """)
    }

    @Test func longOptionNamesWrapBelow() {
        let spec = CommandSpec(
            name: "t", overview: "o",
            options: [.value("a-very-long-option-name-indeed", "value", "Help text.")])
        #expect(
            spec.helpText.contains(
                "  --a-very-long-option-name-indeed <value>\n" + String(repeating: " ", count: 34) + "Help text.\n"))
    }

    @Test func progressOnlyWritesToStandardError() {
        let recording = RecordingConsole()
        let console = recording.console(errorIsTerminal: true)
        console.progress("50%")
        console.endProgress()
        #expect(recording.output.isEmpty)
        #expect(recording.error == "\r\u{1B}[K50%\r\u{1B}[K")
        #expect(console.errorIsTerminal)
    }
}
