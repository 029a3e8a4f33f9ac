/// Parsed arguments of one command, read back through typed accessors that name the flag in their errors.
public struct ParsedArguments: Sendable {
    /// Option values by name (the last occurrence wins).
    public private(set) var values: [String: String] = [:]
    /// Flags given.
    public private(set) var flags: Set<String> = []
    /// Positional arguments.
    public private(set) var positionals: [String] = []
    /// Whether help was asked for.
    public private(set) var helpRequested = false

    /// Creates an empty set of arguments.
    public init() {}

    /// Where each value read from a config file came from (`path:line`), for error messages.
    public private(set) var origins: [String: String] = [:]

    mutating func setValue(_ value: String, for name: String, origin: String? = nil) {
        values[name] = value
        origins[name] = origin
    }

    /// `message`, with where the value of `name` came from when that was a config file.
    func located(_ message: String, _ name: String) -> String {
        origins[name].map { "\(message) (\($0))" } ?? message
    }
    mutating func setFlag(_ name: String) { flags.insert(name) }
    mutating func appendPositional(_ value: String) { positionals.append(value) }
    mutating func requestHelp() { helpRequested = true }

    /// The raw value of `name`, if given.
    public subscript(name: String) -> String? { values[name] }

    /// The value of `name`, or `defaultValue` when it was not given.
    public func string(_ name: String, default defaultValue: String) -> String { values[name] ?? defaultValue }

    /// Whether flag `name` was given.
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The value of `name` as a whole number (accepts `_` separators and k/M/G binary suffixes), if given.
    public func int(_ name: String) throws(UsageError) -> Int? {
        guard let v = values[name] else { return nil }
        guard let n = Self.parseInteger(v) else {
            throw UsageError(located("--\(name) expects a whole number, got '\(v)'", name))
        }
        return n
    }

    /// The value of `name` as a whole number, or `defaultValue`.
    public func int(_ name: String, default defaultValue: Int) throws(UsageError) -> Int {
        try int(name) ?? defaultValue
    }

    /// The value of `name` as a finite `Double`, if given.
    public func double(_ name: String) throws(UsageError) -> Double? {
        guard let v = values[name] else { return nil }
        guard let d = Double(v), d.isFinite else {
            throw UsageError(located("--\(name) expects a number, got '\(v)'", name))
        }
        return d
    }

    /// The value of `name` as a finite `Double`, or `defaultValue`.
    public func double(_ name: String, default defaultValue: Double) throws(UsageError) -> Double {
        try double(name) ?? defaultValue
    }

    /// The value of `name` as a bit range `lo-hi` (or one width `b`, meaning `b...b`) within 2...16, if given.
    public func bitRange(_ name: String) throws(UsageError) -> ClosedRange<Int>? {
        guard let v = values[name] else { return nil }
        guard let r = Self.range(v), r.lowerBound >= 2, r.upperBound <= 16 else {
            throw UsageError(located("--\(name) must be a bit range lo-hi within 2...16 such as 6-8, got '\(v)'", name))
        }
        return r
    }

    /// `lo-hi` with `lo ≤ hi`, or a single number `b` as `b...b`; nil for anything else.
    public static func range(_ text: some StringProtocol) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(parts.count), let lo = parts.first ?? nil, let hi = parts.last ?? nil, lo <= hi else {
            return nil
        }
        return lo...hi
    }

    /// The value of `name`, which must be one of `choices` (the first is the default).
    public func choice(_ name: String, among choices: [String]) throws(UsageError) -> String {
        precondition(!choices.isEmpty, "choice(\(name)) needs at least one allowed value")
        guard let v = values[name] else { return choices[0] }
        guard choices.contains(v) else {
            let hint = didYouMean(v, among: choices)
            throw UsageError(located("--\(name) expects \(Self.list(choices)), got '\(v)'.\(hint)", name))
        }
        return v
    }

    /// The value of `name` as a comma-separated list, or `defaultValue`.
    public func list(_ name: String, default defaultValue: [String]) -> [String] {
        guard let v = values[name] else { return defaultValue }
        return v.split(separator: ",").map(String.init)
    }

    /// "a, b or c".
    static func list(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items[items.count - 1]
    }

    static func parseInteger(_ text: String) -> Int? {
        var t = text.filter { $0 != "_" }
        var multiplier = 1
        if let last = t.last, "kKMG".contains(last) {
            multiplier = last == "G" ? 1 << 30 : (last == "M" ? 1 << 20 : 1 << 10)
            t.removeLast()
        }
        guard let n = Int(t) else { return nil }
        let (r, overflow) = n.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : r
    }
}
