import Foundation

/// Why `--model NAME|FILE` cannot be used.
public enum ModelSpecError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Not a built-in name and not a path.
    case unknownName(String)
    /// A spec file that cannot be read.
    case unreadable(path: String)
    /// A spec file whose JSON or layers are wrong.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownName(let name):
            return "unknown model '\(name)' (expected \(ModelSpec.builtIn.keys.sorted().joined(separator: ", ")) "
                + "or a .json spec file)"
        case .unreadable(let path): return "cannot read model spec file '\(path)'"
        case .invalid(let path, let reason): return "model spec '\(path)' is not valid: \(reason)"
        }
    }
}

extension ModelSpec {
    /// A built-in model by name, or the spec in a JSON file (a name ending in `.json` or holding a `/`),
    /// decoded and validated (its layers must chain on a 28 × 28 input).
    public static func load(_ nameOrPath: String) throws(ModelSpecError) -> ModelSpec {
        if let m = builtIn[nameOrPath] { return m }
        guard nameOrPath.hasSuffix(".json") || nameOrPath.contains("/") else {
            throw .unknownName(nameOrPath)
        }
        guard let data = FileManager.default.contents(atPath: nameOrPath) else { throw .unreadable(path: nameOrPath) }
        let spec: ModelSpec
        do {
            spec = try JSONDecoder().decode(ModelSpec.self, from: data)
        } catch {
            throw .invalid(path: nameOrPath, reason: describeDecoding(error))
        }
        do {
            _ = try spec.validate()
        } catch {
            throw .invalid(path: nameOrPath, reason: error.message)
        }
        return spec
    }
}

/// A decoding error in words: what was wrong and where.
public func describeDecoding(_ error: any Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let c): return c.debugDescription
    case DecodingError.keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
    case DecodingError.typeMismatch(_, let c):
        return "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
    case DecodingError.valueNotFound(_, let c):
        return "missing value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
    default: return "\(error)"
    }
}
