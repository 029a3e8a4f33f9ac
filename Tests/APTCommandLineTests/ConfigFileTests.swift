import Foundation
import Testing

@testable import APTCommandLine

/// `--config FILE`: the file's settings fill in what the command line leaves out; every mistake names the file
/// and line.
@Suite struct ConfigFileTests {
    static let spec = CommandSpec(
        name: "tool run", overview: "Runs a thing.",
        options: [
            .value("model", "name", "Model name.", required: true),
            .value("epochs", "n", "Passes.", default: "3"),
            .value("coordinator", "endpoint", "Where."),
            .flag("quiet", "No progress."),
            .flag("force-plain", "Plain."),
            ConfigFile.option,
        ])

    static func parse(_ arguments: [String], file: String) throws(UsageError) -> ParsedArguments {
        try parseArguments(arguments, spec: spec) { (path) throws(UsageError) -> String in
            guard path == "node.conf" else { throw UsageError("unexpected path \(path)") }
            return file
        }
    }

    @Test func fileFillsWhatTheCommandLineLeavesOut() throws {
        let file = """
            # a board
            model = mlp
            epochs = 7   # comment after a value
              coordinator = "tcp://host:5555"

            quiet = true
            force-plain = false
            """
        let a = try Self.parse(["--config", "node.conf"], file: file)
        #expect(a["model"] == "mlp")
        #expect(try a.int("epochs") == 7)
        #expect(a["coordinator"] == "tcp://host:5555")
        #expect(a.flag("quiet"))
        #expect(!a.flag("force-plain"))
    }

    @Test func commandLineWinsWhereverItAppears() throws {
        let file = "model = mlp\nepochs = 7\n"
        let before = try Self.parse(["--epochs", "2", "--config", "node.conf"], file: file)
        let after = try Self.parse(["--config=node.conf", "--model", "lenet"], file: file)
        #expect(try before.int("epochs") == 2)
        #expect(before["model"] == "mlp")
        #expect(after["model"] == "lenet")
        #expect(try after.int("epochs") == 7)
    }

    @Test func requiredOptionMayComeFromTheFileOnly() throws {
        #expect(throws: UsageError("Missing expected argument '--model <name>'.")) {
            try Self.parse(["--config", "node.conf"], file: "epochs = 1\n")
        }
    }

    @Test(arguments: [
        ("modle = mlp", "node.conf:1: unknown option 'modle'. Did you mean '--model'?"),
        ("model = a\n\nmodel = b", "node.conf:3: 'model' is set twice"),
        ("model mlp", "node.conf:1: expected 'name = value', got 'model mlp'"),
        ("quiet = yes", "node.conf:1: 'quiet' is a flag: true or false, got 'yes'"),
        ("config = other.conf", "node.conf:1: 'config' cannot be set in a config file"),
        ("coordinator = \"tcp://x", "node.conf:1: a quoted value has no closing quote"),
        ("coordinator = \"a\" b", "node.conf:1: unexpected text after the quoted value: 'b'"),
    ])
    func refusals(file: String, message: String) {
        #expect(throws: UsageError(message)) { try Self.parse(["--config", "node.conf"], file: file) }
    }

    @Test func aBadValueFromTheFileNamesItsLine() throws {
        let a = try Self.parse(["--config", "node.conf"], file: "model = mlp\n\nepochs = 7 x\n")
        #expect(throws: UsageError("--epochs expects a whole number, got '7 x' (node.conf:3)")) { try a.int("epochs") }
        let b = try Self.parse(["--config", "node.conf", "--epochs", "oops"], file: "model = mlp\nepochs = 7\n")
        #expect(throws: UsageError("--epochs expects a whole number, got 'oops'")) { try b.int("epochs") }
    }

    @Test func aFileThatCannotBeReadIsNamed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(getpid()).conf").path
        #expect(throws: UsageError("cannot read config file \(path): No such file or directory")) {
            try parseArguments(["--config", path], spec: Self.spec)
        }
        let real = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(getpid()).conf").path
        try "model = lenet\n".write(toFile: real, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: real) }
        #expect(try parseArguments(["--config", real], spec: Self.spec)["model"] == "lenet")
    }
}
