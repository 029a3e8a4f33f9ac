import Foundation
import Testing

@Suite("apt-coord on the command line")
struct CoordinatorCommandTests {
    @Test("keygen in both tools takes a bare prefix in the working directory, even of one character")
    func keygenBarePrefix() throws {
        let dir = NSTemporaryDirectory() + "apt-keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (tool, prefix) in [("apt-coord", "c"), ("apt-node", "n")] {
            let r = try run(tool, ["keygen", "--out", prefix], in: dir)
            #expect(r.status == 0, "\(tool): \(r.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(prefix).key"))
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(prefix).pub"))
        }
        let missing = try run("apt-node", ["keygen", "--out", "no-such-dir/node"], in: dir)
        #expect(missing.status == 1)
        #expect(firstLine(missing.stderr) == "Error: directory no-such-dir does not exist; create it first")
    }

    @Test("keygen writes a secret key readable only by its owner and a public key, and never overwrites silently")
    func keygen() throws {
        let prefix = NSTemporaryDirectory() + "apt-keys-\(UUID().uuidString)"
        let r = try run("apt-coord", ["keygen", "--out", prefix, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let attrs = try FileManager.default.attributesOfItem(atPath: prefix + ".key")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let pub = try String(contentsOfFile: prefix + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let sec = try String(contentsOfFile: prefix + ".key", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(pub.count == 40 && sec.count == 40 && pub != sec)
        #expect(r.stdout.contains(pub))
        let again = try run("apt-coord", ["keygen", "--out", prefix])
        #expect(again.status == 1)
        #expect(again.stderr == "Error: \(prefix).key exists; pass --force to overwrite it\n")
        #expect(try String(contentsOfFile: prefix + ".pub", encoding: .utf8).contains(pub), "the old key survives")
        let forced = try run("apt-coord", ["keygen", "--out", prefix, "--force"])
        #expect(forced.status == 0)
        #expect(try !String(contentsOfFile: prefix + ".pub", encoding: .utf8).contains(pub))
        // A missing directory is named, not a temporary file inside it.
        let missing = NSTemporaryDirectory() + "apt-no-such-dir-\(UUID().uuidString)"
        let nowhere = try run("apt-coord", ["keygen", "--out", missing + "/coordinator"])
        #expect(nowhere.status == 1)
        #expect(nowhere.stderr == "Error: directory \(missing) does not exist; create it first\n")
    }

    @Test("unknown subcommands and flags are usage errors")
    func usage() throws {
        let r = try run("apt-coord", ["keygne"])
        #expect(r.status == 64)
        #expect(firstLine(r.stderr) == "Error: Unknown subcommand 'keygne'. Did you mean 'keygen'?")
        let h = try run("apt-coord", ["keygen", "--help"])
        #expect(h.status == 0 && h.stdout.hasPrefix("OVERVIEW: "))
        let f = try run("apt-coord", ["keygen", "--outt", "x"])
        #expect(f.status == 64)
        #expect(firstLine(f.stderr) == "Error: Unknown option '--outt'. Did you mean '--out'?")
    }
}
