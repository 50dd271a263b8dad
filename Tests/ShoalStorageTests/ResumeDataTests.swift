import Foundation
import ShoalBencode
import ShoalCore
import Testing

@testable import ShoalStorage

private let infoHash = InfoHash.v1(Digest20(bytes: [UInt8](repeating: 0x42, count: 20))!)

/// The mixed torrent with every piece written, all verified, and resume data captured.
private struct Downloaded {
    let scratch: ScratchDirectory
    let storage: PieceStorage
    let resume: ResumeData
    var layout: FileLayout { storage.layout }

    init() throws {
        scratch = try ScratchDirectory()
        storage = PieceStorage(layout: mixedTorrent.layout, directory: scratch.at("downloads"))
        for piece in 0..<mixedTorrent.layout.pieceCount {
            try mixedTorrent.writePiece(piece, to: storage)
        }
        try storage.sync()
        resume = ResumeData.capture(
            infoHash: infoHash, verified: Bitfield(count: mixedTorrent.layout.pieceCount, allSet: true),
            layout: mixedTorrent.layout, directory: scratch.at("downloads"))
    }

    func validate() -> ResumeData.Validation {
        resume.validate(against: layout, directory: scratch.at("downloads"))
    }
}

private func bits(_ text: String) -> Bitfield {
    var bitfield = Bitfield(count: text.count)
    for (index, character) in text.enumerated() where character == "1" { bitfield.set(index) }
    return bitfield
}

@Suite("ResumeData")
struct ResumeDataTests {
    @Test func roundTripsThroughAFile() throws {
        let downloaded = try Downloaded()
        let resume = downloaded.resume
        #expect(resume.files[3] == nil, "padding is never on disk")
        #expect(resume.files[1] == nil, "an empty file not created yet")
        #expect(resume.files[0]?.size == 10000)
        let decoded = try ResumeData(decoding: resume.encoded, infoHash: infoHash, layout: downloaded.layout)
        #expect(decoded == resume)

        let path = downloaded.scratch.at("t.resume")
        try resume.save(to: path)
        try resume.save(to: path)  // Replaces the old one atomically.
        #expect(try ResumeData.load(from: path, infoHash: infoHash, layout: downloaded.layout) == resume)
        #expect(try FileManager.default.contentsOfDirectory(atPath: downloaded.scratch.path).sorted() == ["downloads", "t.resume"])

        // A v2 info-hash and nanoseconds survive too.
        let v2 = InfoHash.v2(Digest32(bytes: [UInt8](repeating: 7, count: 32))!)
        var other = ResumeData(infoHash: v2, verified: bits("101001"), files: resume.files)
        other.files[0] = FileStamp(size: 1, modifiedSeconds: -5, modifiedNanoseconds: 999_999_999)
        #expect(try ResumeData(decoding: other.encoded, infoHash: v2, layout: downloaded.layout) == other)
    }

    @Test func refusesWhatDoesNotFit() throws {
        let downloaded = try Downloaded()
        let layout = downloaded.layout
        let encoded = downloaded.resume.encoded
        func code(_ bytes: [UInt8], hash: InfoHash = infoHash, layout: FileLayout = layout) -> ResumeDataError.Code? {
            do {
                _ = try ResumeData(decoding: bytes, infoHash: hash, layout: layout)
                return nil
            } catch {
                return error.code
            }
        }
        func edited(_ change: (inout [[UInt8]: BencodeValue]) -> Void) -> [UInt8] {
            guard case .dictionary(var dictionary) = try! BencodeDocument(decoding: encoded).root.value else { return [] }
            change(&dictionary)
            return BencodeValue.dictionary(dictionary).encoded
        }
        let key = { (text: String) in Array(text.utf8) }

        #expect(code(encoded) == nil)
        #expect(code(encoded, hash: .v1(Digest20(bytes: [UInt8](repeating: 1, count: 20))!)) == .wrongInfoHash)
        #expect(code(encoded, hash: .v2(Digest32(bytes: [UInt8](repeating: 0x42, count: 32))!)) == .wrongInfoHash)
        let otherLayout = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100)]).layout
        #expect(code(encoded, layout: otherLayout) == .wrongPieceCount)
        let sameSizeFewerFiles = TorrentFixture(pieceLength: 32768, files: [.init(name: "a", length: 175_544)]).layout
        #expect(code(encoded, layout: sameSizeFewerFiles) == .wrongFileCount)

        #expect(code([]) == .malformed)
        #expect(code(Array("garbage".utf8)) == .malformed)
        #expect(code(Array("li1ee".utf8)) == .malformed)
        #expect(code(Array(encoded.dropLast())) == .malformed)
        #expect(code(edited { $0[key("version")] = 2 }) == .unsupportedVersion(2))
        #expect(code(edited { $0[key("version")] = nil }) == .malformed)
        #expect(code(edited { $0[key("version")] = "1" }) == .malformed)
        #expect(code(edited { $0[key("info-hash")] = nil }) == .malformed)
        #expect(code(edited { $0[key("pieces")] = 7 }) == .wrongPieceCount)
        #expect(code(edited { $0[key("verified")] = .string([0xFF]) }) == .malformed, "one byte for six pieces is right; spare bits set are not")
        #expect(code(edited { $0[key("verified")] = .string([0xFC, 0]) }) == .malformed, "wrong length")
        #expect(code(edited { $0[key("files")] = .list([]) }) == .wrongFileCount)
        #expect(code(edited { $0[key("files")] = 3 }) == .malformed)
        func editedFile(_ entry: BencodeValue) -> [UInt8] {
            edited { dictionary in
                guard case .list(var files) = dictionary[key("files")]! else { return }
                files[0] = entry
                dictionary[key("files")] = .list(files)
            }
        }
        #expect(code(editedFile(["size": -1, "mtime": 0, "mtime-ns": 0])) == .malformed)
        #expect(code(editedFile(["size": 1, "mtime": 0, "mtime-ns": 1_000_000_000])) == .malformed)
        #expect(code(editedFile(["size": 1, "mtime": 0])) == .malformed)
        #expect(code(editedFile(["size": 1, "mtime": 0, "mtime-ns": 0])) == nil)
        #expect(code(editedFile(7)) == .malformed)
        // Keys it does not know are left alone.
        #expect(code(edited { $0[key("later")] = "x" }) == nil)

        do {
            _ = try ResumeData.load(from: downloaded.scratch.at("none"), infoHash: infoHash, layout: layout)
            Issue.record("loaded a missing file")
        } catch {
            guard case .unreadable(let storageError) = error.code else {
                Issue.record("\(error)")
                return
            }
            #expect(storageError.condition == .missing)
        }
    }

    @Test func unchangedFilesAreTrusted() throws {
        let downloaded = try Downloaded()
        let validation = downloaded.validate()
        #expect(validation.trusted == downloaded.resume.verified)
        #expect(validation.needsRecheck.isEmpty)
        #expect(validation.changedFiles == [])

        // Unverified pieces stay unverified, and need no recheck: their files did not change.
        var partial = downloaded.resume
        partial.verified = bits("110101")
        let partialValidation = partial.validate(against: downloaded.layout, directory: downloaded.scratch.at("downloads"))
        #expect(partialValidation.trusted == bits("110101"))
        #expect(partialValidation.needsRecheck.isEmpty)
    }

    /// File c (pieces 2, 3 and 4, the last shared with d, e and f) written to after the save: its pieces are
    /// rechecked, the others trusted. The same for a file deleted, and for a size changed under an unchanged
    /// modification time.
    @Test func changedFilesAreRechecked() throws {
        let expectedTrusted = bits("110001")
        for change in ["touched", "deleted", "resized", "replaced by a link"] {
            let downloaded = try Downloaded()
            let path = downloaded.storage.path(ofFile: 4)
            let saved = downloaded.resume.files[4]!
            switch change {
            case "touched":
                setModificationTime(path, seconds: Int(saved.modifiedSeconds) + 1, nanoseconds: Int(saved.modifiedNanoseconds))
            case "deleted":
                try FileManager.default.removeItem(atPath: path)
            case "resized":
                #expect(truncate(path, 69999) == 0)
                setModificationTime(path, seconds: Int(saved.modifiedSeconds), nanoseconds: Int(saved.modifiedNanoseconds))
            default:
                let moved = downloaded.scratch.at("moved")
                try FileManager.default.moveItem(atPath: path, toPath: moved)
                #expect(symlink(moved, path) == 0)
            }
            let validation = downloaded.validate()
            #expect(validation.trusted == expectedTrusted, "\(change)")
            #expect(validation.needsRecheck == bits("001110"), "\(change)")
            #expect(validation.changedFiles == [4], "\(change)")
        }

        // Only nanoseconds differ: changed all the same.
        let downloaded = try Downloaded()
        let saved = downloaded.resume.files[0]!
        setModificationTime(
            downloaded.storage.path(ofFile: 0), seconds: Int(saved.modifiedSeconds),
            nanoseconds: (Int(saved.modifiedNanoseconds) + 1) % 1_000_000_000)
        #expect(downloaded.validate().trusted == bits("011111"))
    }

    /// Resume data that claims a piece over a file that did not exist when it was saved contradicts itself:
    /// that piece is not trusted. An empty file appearing or vanishing changes no piece.
    @Test func inconsistentResumeDataIsNotTrusted() throws {
        let downloaded = try Downloaded()
        var resume = downloaded.resume
        resume.files[5] = nil  // d, in piece 4.
        try FileManager.default.removeItem(atPath: downloaded.storage.path(ofFile: 5))
        let validation = resume.validate(against: downloaded.layout, directory: downloaded.scratch.at("downloads"))
        #expect(validation.trusted == bits("111101"))
        #expect(validation.needsRecheck == bits("000010"))
        #expect(validation.changedFiles == [])

        let fresh = try Downloaded()
        try fresh.storage.createEmptyFiles()
        #expect(fresh.validate().trusted == fresh.resume.verified)
        #expect(fresh.validate().changedFiles == [])

        // Resume data for another layout trusts nothing.
        let other = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100)]).layout
        #expect(downloaded.resume.validate(against: other, directory: downloaded.scratch.path).trusted.isEmpty)
    }
}
