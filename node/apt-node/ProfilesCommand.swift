import APTCommandLine
import APTCore
import Foundation

/// `apt-node profiles`: the built-in device profiles.
enum ProfilesCommand {
    static let spec = CommandSpec(
        name: "apt-node profiles", overview: "List the built-in device profiles (energy per operation and per byte).",
        options: [
            .value(
                "format", "text|json", "Output as a table or JSON (the file format --profile accepts).",
                default: "text")
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            switch try args.choice("format", among: ["text", "json"]) {
            case "json":
                console.out(String(decoding: try jsonData(DeviceProfile.builtIn), as: UTF8.self) + "\n")
            default:
                console.out(table())
            }
        }
    }

    static func table() -> String {
        var s =
            "name           int8 mul pJ  int32 add pJ  fp32 mul pJ  fp32 add pJ  SRAM B     SRAM pJ/B  DRAM pJ/B  "
            + "multiplies at\n"
        for p in DeviceProfile.builtIn {
            s += p.name.padding(toLength: 14, withPad: " ", startingAt: 0)
            s += String(
                format: " %11.3f  %12.3f  %11.3f  %11.3f  %-9d  %9.2f  %9.2f  %@\n",
                p.int8MultiplyPJ, p.int32AddPJ, p.fp32MultiplyPJ, p.fp32AddPJ, p.sramBytes, p.sramPJPerByte,
                p.dramPJPerByte, (p.multiplierWidth == .logical ? "logical width" : "storage width") as NSString)
        }
        return s
    }
}
