/// The energy and memory characteristics of a device class, used to price the operations a run performs.
///
/// Integer multiply energy scales with the product of the operand widths (about quadratic in bits), integer
/// add energy linearly with the adder width. fp32 operations are priced on their own. Memory traffic is priced
/// per byte: at the SRAM rate when a pass's working set fits the on-chip SRAM, else at the DRAM rate (see
/// `CostModel`).
/// All figures are ALU + memory-access energy only; instruction overhead of a general-purpose core is not
/// included (see docs/energy-model.md).
public struct DeviceProfile: Codable, Hashable, Sendable {
    /// Short name, used with `--profile`.
    public var name: String
    /// What the profile stands for and where its numbers come from.
    public var description: String
    /// Energy of an 8-bit × 8-bit integer multiply, pJ.
    public var int8MultiplyPJ: Double
    /// Energy of a 32-bit integer add, pJ.
    public var int32AddPJ: Double
    /// Energy of an fp32 multiply, pJ.
    public var fp32MultiplyPJ: Double
    /// Energy of an fp32 add, pJ.
    public var fp32AddPJ: Double
    /// On-chip SRAM (or cache) capacity in bytes; tensors up to this size are priced at `sramPJPerByte`.
    public var sramBytes: Int
    /// Energy per byte read or written in SRAM, pJ.
    public var sramPJPerByte: Double
    /// Energy per byte read or written in DRAM, pJ.
    public var dramPJPerByte: Double
    /// Usable memory of the device in bytes, as a default memory budget hint.
    public var memoryBytes: Int
    /// At which width the device multiplies integer codes.
    public var multiplierWidth: MultiplierWidth

    /// At which width a device multiplies integer codes.
    public enum MultiplierWidth: String, Codable, Hashable, Sendable {
        /// At the codes' logical width (an accelerator with narrow multipliers): a 6-bit by 12-bit product
        /// costs 6·12/64 of an int8 multiply.
        case logical
        /// At the width the codes are stored in (a CPU): 8 bits for codes up to 8 bits, else 16.
        case storage
    }

    /// Creates a profile.
    public init(
        name: String, description: String, int8MultiplyPJ: Double, int32AddPJ: Double, fp32MultiplyPJ: Double,
        fp32AddPJ: Double, sramBytes: Int, sramPJPerByte: Double, dramPJPerByte: Double, memoryBytes: Int,
        multiplierWidth: MultiplierWidth = .logical
    ) {
        self.name = name
        self.description = description
        self.int8MultiplyPJ = int8MultiplyPJ
        self.int32AddPJ = int32AddPJ
        self.fp32MultiplyPJ = fp32MultiplyPJ
        self.fp32AddPJ = fp32AddPJ
        self.sramBytes = sramBytes
        self.sramPJPerByte = sramPJPerByte
        self.dramPJPerByte = dramPJPerByte
        self.memoryBytes = memoryBytes
        self.multiplierWidth = multiplierWidth
    }

    private enum CodingKeys: String, CodingKey {
        case name, description, int8MultiplyPJ, int32AddPJ, fp32MultiplyPJ, fp32AddPJ, sramBytes, sramPJPerByte
        case dramPJPerByte, memoryBytes, multiplierWidth
    }

    /// Decodes a profile; a file without `multiplierWidth` gets `logical`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name),
            description: try c.decode(String.self, forKey: .description),
            int8MultiplyPJ: try c.decode(Double.self, forKey: .int8MultiplyPJ),
            int32AddPJ: try c.decode(Double.self, forKey: .int32AddPJ),
            fp32MultiplyPJ: try c.decode(Double.self, forKey: .fp32MultiplyPJ),
            fp32AddPJ: try c.decode(Double.self, forKey: .fp32AddPJ),
            sramBytes: try c.decode(Int.self, forKey: .sramBytes),
            sramPJPerByte: try c.decode(Double.self, forKey: .sramPJPerByte),
            dramPJPerByte: try c.decode(Double.self, forKey: .dramPJPerByte),
            memoryBytes: try c.decode(Int.self, forKey: .memoryBytes),
            multiplierWidth: try c.decodeIfPresent(MultiplierWidth.self, forKey: .multiplierWidth) ?? .logical)
    }

    /// Energy (pJ) of an integer multiply of `a`-bit by `b`-bit operands: `int8Multiply · a·b / 64`.
    @inline(__always) public func intMultiplyPJ(_ a: Int, _ b: Int) -> Double { int8MultiplyPJ * Double(a * b) / 64 }
    /// Energy (pJ) of a `bits`-wide integer add: `int32Add · bits / 32`.
    @inline(__always) public func intAddPJ(_ bits: Int) -> Double { int32AddPJ * Double(bits) / 32 }
    /// Energy (pJ) per byte moved by a pass whose working set is `bytes` bytes (SRAM if it fits, else DRAM).
    @inline(__always) public func pjPerByte(workingSetBytes bytes: Int) -> Double {
        bytes <= sramBytes ? sramPJPerByte : dramPJPerByte
    }

    /// Checks that every figure is finite and non-negative.
    public func validate() throws(ConfigurationError) {
        let values = [int8MultiplyPJ, int32AddPJ, fp32MultiplyPJ, fp32AddPJ, sramPJPerByte, dramPJPerByte]
        guard values.allSatisfy({ $0.isFinite && $0 >= 0 }), sramBytes >= 0, memoryBytes > 0, !name.isEmpty else {
            throw ConfigurationError("device profile '\(name)' has a negative, missing or non-finite figure")
        }
    }

    /// Generic 45 nm figures (Horowitz, ISSCC 2014): int8 mult 0.2 pJ, int32 add 0.1 pJ, fp32 mult 3.7 pJ,
    /// fp32 add 0.9 pJ; 64-bit SRAM read 100 pJ at 1 MB (12.5 pJ/B); DRAM 1.3–2.6 nJ per 64 bits (midpoint
    /// 1.95 nJ, 243.75 pJ/B).
    public static let generic45nm = DeviceProfile(
        name: "generic-45nm",
        description: "Horowitz ISSCC 2014 45 nm figures; 1 MB SRAM at 100 pJ/64 bit, DRAM 1.95 nJ/64 bit",
        int8MultiplyPJ: 0.2, int32AddPJ: 0.1, fp32MultiplyPJ: 3.7, fp32AddPJ: 0.9,
        sramBytes: 1 << 20, sramPJPerByte: 12.5, dramPJPerByte: 243.75, memoryBytes: 1 << 30)

    /// A Raspberry Pi 4 class board: Cortex-A72 at 28 nm (45 nm figures scaled by 0.5 for logic), 1 MB L2
    /// priced as SRAM (100 pJ/64 bit at 45 nm, scaled), LPDDR4 DRAM (~1.3 nJ/64 bit).
    public static let raspberryPi4 = DeviceProfile(
        name: "rpi4",
        description: "Raspberry Pi 4 class (Cortex-A72, 28 nm, 1 MB L2, LPDDR4); Horowitz 45 nm scaled by 0.5",
        int8MultiplyPJ: 0.1, int32AddPJ: 0.05, fp32MultiplyPJ: 1.85, fp32AddPJ: 0.45,
        sramBytes: 1 << 20, sramPJPerByte: 6.25, dramPJPerByte: 162.5, memoryBytes: 2 << 30,
        multiplierWidth: .storage)

    /// A Jetson Nano class board: Cortex-A57 at 20 nm (scaled by 0.4), 2 MB L2, LPDDR4.
    public static let jetsonNano = DeviceProfile(
        name: "jetson-nano",
        description: "Jetson Nano class (Cortex-A57, 20 nm, 2 MB L2, LPDDR4); Horowitz 45 nm scaled by 0.4",
        int8MultiplyPJ: 0.08, int32AddPJ: 0.04, fp32MultiplyPJ: 1.48, fp32AddPJ: 0.36,
        sramBytes: 2 << 20, sramPJPerByte: 6.0, dramPJPerByte: 162.5, memoryBytes: 4 << 30,
        multiplierWidth: .storage)

    /// A Cortex-M7 class MCU at 40 nm: 512 KB on-chip SRAM, external SDRAM (priced at the top of Horowitz's
    /// DRAM range, 2.6 nJ/64 bit), 8 MB external RAM.
    public static let cortexM7 = DeviceProfile(
        name: "cortex-m7",
        description: "Cortex-M7 class MCU (40 nm, 512 KB SRAM, 8 MB external SDRAM); Horowitz 45 nm scaled by 0.9",
        int8MultiplyPJ: 0.18, int32AddPJ: 0.09, fp32MultiplyPJ: 3.33, fp32AddPJ: 0.81,
        sramBytes: 512 * 1024, sramPJPerByte: 4.5, dramPJPerByte: 325, memoryBytes: 8 << 20,
        multiplierWidth: .storage)

    /// The profiles shipped with the engine.
    public static let builtIn: [DeviceProfile] = [generic45nm, raspberryPi4, jetsonNano, cortexM7]

    /// A built-in profile by name.
    public static func named(_ name: String) -> DeviceProfile? { builtIn.first { $0.name == name } }
}
