import Testing

@testable import APTCommandLine

/// The parser, in-process: every accepted form and every refusal, each refusal naming what was wrong.
@Suite struct ArgumentParsingTests {
    static let spec = CommandSpec(
        name: "tool run", overview: "Runs a thing.",
        options: [
            .value("epochs", "n", "Passes.", default: "3"),
            .value("model", "name", "Model name.", required: true),
            .value("format", "text|json", "Output.", default: "text"),
            .value("rate", "x", "A rate."),
            .flag("quiet", "No progress."),
        ])

    @Test func valueForms() throws {
        let a = try parseArguments(["--model", "mlp", "--epochs=5", "--rate", "0.5", "--quiet"], spec: Self.spec)
        #expect(a["model"] == "mlp")
        #expect(try a.int("epochs") == 5)
        #expect(try a.double("rate") == 0.5)
        #expect(a.flag("quiet"))
        #expect(!a.helpRequested)
        #expect(a.positionals.isEmpty)
    }

    @Test func repeatedOptionKeepsTheLastValue() throws {
        let a = try parseArguments(["--model", "a", "--model=b", "--epochs", "1", "--epochs", "9"], spec: Self.spec)
        #expect(a["model"] == "b")
        #expect(try a.int("epochs") == 9)
    }

    @Test func valueMayLookLikeANegativeNumberOrADash() throws {
        let a = try parseArguments(["--model", "-", "--rate", "-1.5"], spec: Self.spec)
        #expect(a["model"] == "-")
        #expect(try a.double("rate") == -1.5)
    }

    @Test func doubleDashEndsOptions() throws {
        let spec = CommandSpec(name: "t", overview: "o", options: [.flag("quiet", "q")], positionalName: "FILE...")
        let a = try parseArguments(["--quiet", "--", "--not-an-option", "-h"], spec: spec)
        #expect(a.flag("quiet"))
        #expect(a.positionals == ["--not-an-option", "-h"])
        #expect(!a.helpRequested)
    }

    @Test func helpAnywhereSkipsTheRequiredCheck() throws {
        let a = try parseArguments(["--epochs", "2", "-h"], spec: Self.spec)
        #expect(a.helpRequested)
        #expect(try parseArguments(["--help"], spec: Self.spec).helpRequested)
    }

    @Test(arguments: [
        (["--epoch", "3", "--model", "m"], "Unknown option '--epoch'. Did you mean '--epochs'?"),
        (["--modle", "m"], "Unknown option '--modle'. Did you mean '--model'?"),
        (["--zzzzzzzz"], "Unknown option '--zzzzzzzz'."),
        (["-q"], "Unknown option '-q'."),
        (["--model"], "Missing value for '--model <name>'."),
        (["--model", "--quiet"], "Missing value for '--model <name>'."),
        (["--quiet=yes", "--model", "m"], "Flag '--quiet' does not take a value."),
        (["--epochs", "2"], "Missing expected argument '--model <name>'."),
        (["--model", "m", "extra"], "Unexpected argument 'extra'."),
    ])
    func refusals(arguments: [String], message: String) {
        #expect(throws: UsageError(message)) { try parseArguments(arguments, spec: Self.spec) }
    }

    @Test func typedAccessorsNameTheFlag() throws {
        let a = try parseArguments(
            ["--model", "m", "--epochs", "three", "--rate", "nan", "--format", "jsn"], spec: Self.spec)
        #expect(throws: UsageError("--epochs expects a whole number, got 'three'")) { try a.int("epochs") }
        #expect(throws: UsageError("--rate expects a number, got 'nan'")) { try a.double("rate") }
        #expect(throws: UsageError("--format expects text or json, got 'jsn'. Did you mean 'json'?")) {
            try a.choice("format", among: ["text", "json"])
        }
    }

    @Test func defaultsWhenAbsent() throws {
        let a = try parseArguments(["--model", "m"], spec: Self.spec)
        #expect(try a.int("epochs", default: 3) == 3)
        #expect(try a.double("rate", default: 0.25) == 0.25)
        #expect(try a.choice("format", among: ["text", "json"]) == "text")
        #expect(a.string("model", default: "x") == "m")
        #expect(a.list("list", default: ["a", "b"]) == ["a", "b"])
        #expect(try a.int("missing") == nil)
    }

    @Test(arguments: [
        ("1_000", 1000), ("4k", 4096), ("4K", 4096), ("3M", 3 << 20), ("2G", 2 << 30), ("-7", -7),
    ])
    func sizes(text: String, value: Int) {
        #expect(ParsedArguments.parseInteger(text) == value, "'\(text)'")
    }

    @Test(arguments: ["", "k", "1.5", "9223372036854775807G", "12x"])
    func badSizes(text: String) {
        #expect(ParsedArguments.parseInteger(text) == nil, "'\(text)' parsed")
    }

    @Test func suggestionsStayClose() {
        #expect(closest("lenett", among: ["mlp", "lenet"]) == "lenet")
        #expect(closest("resnet50", among: ["mlp", "lenet"]) == nil)
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(editDistance("", "abc") == 3)
    }
}
