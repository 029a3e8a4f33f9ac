import APTCore
import CZmq
import Foundation
import Testing

@testable import APTProtocol

/// Key files and allow-lists: every key `apt-coord keygen` can make is accepted, whatever the line ends.
@Suite("Keys and allow-lists", .serialized)
struct KeyAndAllowListTests {
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "apt-keys-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("a secret key file is never readable by others, not even right after creation")
    func keyFileModes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A permissive umask must not widen the secret file.
        let old = umask(0)
        defer { umask(old) }
        let files = try KeyFiles.create(prefix: dir + "/node", overwrite: false)
        var st = stat()
        #expect(stat(files.secretKeyPath, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600, "secret key mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(stat(files.publicKeyPath, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o644)
        #expect(try KeyFiles.readKey(path: files.secretKeyPath) == files.keys.secretKey)
        #expect(try KeyFiles.readKey(path: files.publicKeyPath) == files.keys.publicKey)
        // Existing files are never overwritten without being asked to.
        #expect(throws: SecurityError.self) { try KeyFiles.create(prefix: dir + "/node", overwrite: false) }
        #expect(try KeyFiles.readKey(path: files.secretKeyPath) == files.keys.secretKey)
        let again = try KeyFiles.create(prefix: dir + "/node", overwrite: true)
        #expect(again.keys != files.keys)
        #expect(stat(again.secretKeyPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["node.key", "node.pub"])
    }

    /// Asks the context's ZAP handler about `key` as libzmq would; returns the status code and User-Id.
    func zapRequest(_ socket: ZMQSocket, key: [UInt8], id: Int) throws -> (status: String, userId: String)? {
        try socket.send([
            Array("1.0".utf8), Array("\(id)".utf8), Array("apt-fleet".utf8), Array("127.0.0.1".utf8), [],
            Array("CURVE".utf8), key,
        ])
        guard let reply = try socket.receive(timeoutMs: 2000), reply.count == 6 else { return nil }
        return (String(decoding: reply[2], as: UTF8.self), String(decoding: reply[4], as: UTF8.self))
    }

    @Test("1,000 key pairs written as keygen writes them, listed with LF and CRLF and comments: every one accepted")
    func thousandKeys() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var keys: [CurveKeyPair] = []
        for i in 0..<1000 {
            let files = try KeyFiles.create(prefix: "\(dir)/node-\(i)", overwrite: false)
            #expect(try KeyFiles.readKey(path: files.publicKeyPath) == files.keys.publicKey)
            keys.append(files.keys)
        }
        // Keys with '#' in them are the case a naive comment rule gets wrong: make sure some are here.
        #expect(keys.filter { $0.publicKey.contains("#") }.count > 100)
        for ending in ["\n", "\r\n", "\r"] {
            var text = "# fleet allow-list\(ending)\(ending)   # indented comment\(ending)"
            for (i, k) in keys.enumerated() {
                text += (i % 7 == 0 ? "  \(k.publicKey)\t" : k.publicKey) + ending
                if i % 100 == 0 { text += "# batch \(i / 100)\(ending)" }
            }
            let path = "\(dir)/allow.txt"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let list = try AllowList.load(path: path)
            #expect(list.keys == Set(keys.map(\.publicKey)), "line ending \(ending.debugDescription)")
        }
        // The ZAP handler accepts every listed key and names it as the User-Id; an unlisted key is refused.
        let ctx = try ZMQContext()
        let zap = try ZAPHandler(context: ctx, allowList: AllowList(keys: Set(keys.map(\.publicKey))))
        defer { zap.stop() }
        let client = try ZMQSocket(context: ctx, type: .req)
        try client.connect("inproc://zeromq.zap.01")
        for (i, k) in keys.enumerated() {
            guard let raw = CurveKeyPair.decode(z85: k.publicKey), let answer = try zapRequest(client, key: raw, id: i)
            else {
                Issue.record("key \(i) got no answer")
                return
            }
            #expect(answer.status == "200", "key \(i) \(k.publicKey) refused")
            #expect(answer.userId == k.publicKey)
        }
        let stranger = try CurveKeyPair.generate()
        let refused = try zapRequest(client, key: CurveKeyPair.decode(z85: stranger.publicKey) ?? [], id: -1)
        #expect(refused?.status == "400")
        #expect(refused?.userId == "")
        #expect(zap.accepted == 1000)
    }

    @Test("a malformed allow-list line is refused with its number; comments only start a line")
    func malformedLines() throws {
        let a = try CurveKeyPair.generate().publicKey
        #expect(throws: SecurityError.self) { try AllowList.parse("\(a)\r\n\(a) # trailing comment\r\n", path: "f") }
        do {
            _ = try AllowList.parse("# ok\n\(a)\nnot-a-key\n", path: "allow.txt")
            Issue.record("a bad line was accepted")
        } catch {
            #expect(error.message.hasPrefix("allow.txt line 3: 'not-a-key'"), "\(error.message)")
        }
        do {
            _ = try AllowList.parse("\r\n\r\n\(a)x\r\n", path: "crlf.txt")
            Issue.record("a 41-character key was accepted")
        } catch {
            #expect(error.message.hasPrefix("crlf.txt line 3:"), "\(error.message)")
        }
        #expect(try AllowList.parse("", path: "empty").keys.isEmpty)
        #expect(try AllowList.parse("\(a)", path: "no final newline").keys == [a])
    }
}
