import ShoalCore

/// An allow-list file for `shoal tracker --allow-list` (opentracker's whitelist format): one info-hash a
/// line in hexadecimal, 40 digits (v1) or 64 (v2, which trackers see truncated to 20 bytes, BEP 52);
/// blank lines and text after `#` are ignored.
public enum InfoHashList {
    /// The most lines read (a private tracker's list, not a database).
    public static let maxLines = 10_000_000

    public static func parse(_ text: String) throws(TrackerError) -> Set<Bytes20> {
        var hashes: Set<Bytes20> = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard lineNumber <= maxLines else { throw TrackerError(.badRequest("more than \(maxLines) lines")) }
            let content = (line.firstIndex(of: "#").map { line[..<$0] } ?? line[...])
                .trimmingCharacters(in: " \t\r")
            guard !content.isEmpty else { continue }
            guard content.count == 40 || content.count == 64, let bytes = Hex.decode(content) else {
                throw TrackerError(.badRequest("line \(lineNumber): \"\(content.prefix(80))\" is not a 40- or 64-digit hexadecimal info-hash"))
            }
            hashes.insert(Bytes20(bytes: bytes.prefix(20))!)
        }
        return hashes
    }
}

extension Substring {
    /// The text without `characters` at either end.
    fileprivate func trimmingCharacters(in characters: String) -> Substring {
        var text = self
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return text
    }
}
